package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/tenant/admin"
	"github.com/callpop/callpop/tenant/file"
)

const adminToken = "admin-token-0123456789"

type fixture struct {
	t     *testing.T
	srv   *httptest.Server
	store *file.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := file.Open(filepath.Join(t.TempDir(), "tenants.json"), file.Config{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Token: adminToken, Store: store}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, store: store}
}

// do sends method path with body (JSON text, or "" for none) and the admin
// token, and returns the status and the decoded answer.
func (f *fixture) do(method, path, body string) (int, map[string]any) {
	f.t.Helper()
	return f.doAs(adminToken, method, path, body)
}

func (f *fixture) doAs(token, method, path, body string) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		f.t.Errorf("%s %s: answer may be cached", method, path)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		f.t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func generated(t *testing.T, ans map[string]any, name string) string {
	t.Helper()
	g, _ := ans["generated"].(map[string]any)
	s, _ := g[name].(string)
	if s == "" {
		t.Fatalf("no generated %s in %v", name, ans)
	}
	return s
}

func TestRequestsWithoutTheAdminTokenAreRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tok := range []string{"", "wrong-token-0123456789", adminToken + "x", adminToken[:len(adminToken)-1]} {
		for _, m := range []string{"GET", "POST"} {
			code, ans := f.doAs(tok, m, "/admin/tenants", `{"id":"acme.ru"}`)
			if code != http.StatusUnauthorized || ans["error"] != "Invalid token" {
				t.Errorf("%s with token %q: %d %v", m, tok, code, ans)
			}
		}
	}
	if f.store.Registry().Len() != 0 {
		t.Error("a refused request changed the store")
	}
}

// TestTheWholeLifeOfATenant: HTTP in, the store changed, at every step;
// secrets leave only once, in the answer that generated them.
func TestTheWholeLifeOfATenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	code, ans := f.do("POST", "/admin/tenants", `{"id":"acme.megapbx.ru","allowed_origins":["https://crm.acme.ru"],"pbx_url":"https://acme.megapbx.ru/sys/crm_api.wcgp","pbx_token":"pbx-token-secret-1"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, ans)
	}
	crm, jwt := generated(t, ans, "crm_token"), generated(t, ans, "jwt_secret")
	stored, ok := f.store.Get("acme.megapbx.ru")
	if !ok || !stored.Enabled || !stored.CRMTokenOK(crm, time.Now()) || stored.JWTSecretsAt(time.Now())[0] != jwt ||
		stored.PBXToken != "pbx-token-secret-1" {
		t.Fatalf("store after create: %+v", stored)
	}
	tn := ans["tenant"].(map[string]any)
	if tn["crm_tokens"].([]any)[0].(map[string]any)["fingerprint"] != tenant.Fingerprint(crm) {
		t.Errorf("answer does not show the crm_token's fingerprint: %v", tn)
	}

	code, ans = f.do("POST", "/admin/tenants", `{"id":"acme.megapbx.ru"}`)
	if code != http.StatusConflict {
		t.Errorf("create again: %d %v", code, ans)
	}

	noSecret := func(what string, ans map[string]any) {
		b, _ := json.Marshal(ans)
		for _, s := range []string{crm, jwt, "pbx-token-secret-1"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s shows a secret: %s", what, b)
			}
		}
	}
	code, ans = f.do("GET", "/admin/tenants", "")
	if code != 200 || len(ans["tenants"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, ans)
	}
	noSecret("list", ans)
	code, ans = f.do("GET", "/admin/tenants/acme.megapbx.ru", "")
	if code != 200 || ans["tenant"].(map[string]any)["id"] != "acme.megapbx.ru" {
		t.Errorf("show: %d %v", code, ans)
	}
	noSecret("show", ans)

	code, ans = f.do("PATCH", "/admin/tenants/acme.megapbx.ru", `{"enabled":false,"webhook_rate":25}`)
	if code != 200 {
		t.Fatalf("patch: %d %v", code, ans)
	}
	noSecret("patch", ans)
	if s, _ := f.store.Get("acme.megapbx.ru"); s.Enabled || s.Limits.WebhookRate != 25 || s.AllowedOrigins[0] != "https://crm.acme.ru" {
		t.Errorf("store after patch: %+v", s.Redacted())
	}

	code, ans = f.do("POST", "/admin/tenants/acme.megapbx.ru/rotate", `{"secret":"crm_token","grace":"1h"}`)
	if code != 200 {
		t.Fatalf("rotate: %d %v", code, ans)
	}
	next := generated(t, ans, "crm_token")
	s, _ := f.store.Get("acme.megapbx.ru")
	now := time.Now()
	if !s.CRMTokenOK(crm, now) || !s.CRMTokenOK(next, now) || s.CRMTokenOK(crm, now.Add(time.Hour+time.Second)) {
		t.Error("after a rotation with a grace of 1h: old and new must pass now, only the new in an hour")
	}
	code, ans = f.do("POST", "/admin/tenants/acme.megapbx.ru/rotate", `{"secret":"jwt_secret","value":"given-jwt-secret-0123456789abcdefghij","grace":"0s"}`)
	if code != 200 || ans["generated"] != nil {
		t.Errorf("rotate with a given value: %d %v", code, ans)
	}
	if s, _ := f.store.Get("acme.megapbx.ru"); len(s.JWTSecretsAt(time.Now())) != 1 {
		t.Error("grace 0s left the old JWT secret valid")
	}

	code, ans = f.do("DELETE", "/admin/tenants/acme.megapbx.ru", "")
	if code != 200 || ans["deleted"] != "acme.megapbx.ru" {
		t.Errorf("delete: %d %v", code, ans)
	}
	if _, ok := f.store.Get("acme.megapbx.ru"); ok {
		t.Error("tenant still in the store after delete")
	}
	code, _ = f.do("GET", "/admin/tenants/acme.megapbx.ru", "")
	if code != http.StatusNotFound {
		t.Errorf("show after delete: %d", code)
	}
}

func TestBadRequestsGetJSONErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if code, ans := f.do("POST", "/admin/tenants", `{"id":"acme.ru","crm_token":"crm-token-0123456789"}`); code != 201 {
		t.Fatalf("create: %d %v", code, ans)
	}
	cases := []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/admin/tenants", `{"id":"Bad/Id"}`, 400},
		{"POST", "/admin/tenants", `{"id":"a.ru","crm_tokn":"x"}`, 400},
		{"POST", "/admin/tenants", `{"id":"a.ru"} {"id":"b.ru"}`, 400},
		{"POST", "/admin/tenants", `{"id":"a.ru","allowed_origins":["https://` + strings.Repeat("a", admin.MaxBody) + `"]}`, 413},
		{"POST", "/admin/tenants", `{"id":"a.ru","crm_token":"short"}`, 400},
		{"PATCH", "/admin/tenants/acme.ru", `{"pbx_url":"not a url"}`, 400},
		{"PATCH", "/admin/tenants/nobody.ru", `{"enabled":false}`, 404},
		{"POST", "/admin/tenants/acme.ru/rotate", `{"secret":"pbx_token"}`, 400},
		{"POST", "/admin/tenants/acme.ru/rotate", `{"secret":"crm_token","grace":"a while"}`, 400},
		{"POST", "/admin/tenants/acme.ru/rotate", `{"secret":"crm_token","grace":"-1h"}`, 400},
		{"DELETE", "/admin/tenants/nobody.ru", "", 404},
		{"PUT", "/admin/tenants/acme.ru", "{}", 405},
		{"GET", "/admin/elsewhere", "", 404},
	}
	for _, c := range cases {
		code, ans := f.do(c.method, c.path, c.body)
		if code != c.code || ans["error"] == nil {
			t.Errorf("%s %s %.60s: %d %v, want %d and an error", c.method, c.path, c.body, code, ans, c.code)
		}
	}
	if s, _ := f.store.Get("acme.ru"); s.PBXURL != "" || len(s.CRMTokens) != 1 || f.store.Registry().Len() != 1 {
		t.Errorf("a refused request changed the store: %+v", s.Redacted())
	}
}

func TestNewRefusesAShortToken(t *testing.T) {
	t.Parallel()
	store, _ := file.Open(filepath.Join(t.TempDir(), "t.json"), file.Config{}, zaptest.NewLogger(t))
	if _, err := admin.New(admin.Config{Token: "short", Store: store}, zaptest.NewLogger(t)); err == nil {
		t.Error("a short admin token was accepted")
	}
}
