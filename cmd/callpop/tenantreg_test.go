package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/tenant/file"
	tredis "github.com/callpop/callpop/tenant/redis"
)

const (
	leakTenantCRM = "tenant-crm-Yw4Pq8Ls2Kd6"
	leakAdminTok  = "admin-token-Rj5Tn1Xc7Bv3"
)

// tenantCLI runs `callpop tenant args…` in process with env and returns
// what it printed.
func tenantCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"tenant"}, args...), envOf(env), &out, &out)
	if strings.Contains(out.String(), leakTenantCRM) {
		t.Errorf("tenant %v prints the given crm_token:\n%s", args, out.String())
	}
	return out.String(), err
}

func mustCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := tenantCLI(t, env, args...)
	if err != nil {
		t.Fatalf("tenant %v: %v\n%s", args, err, out)
	}
	return out
}

// generatedIn returns the value of a "generated NAME (…): VALUE" line.
func generatedIn(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "generated "+name+" ") {
			return line[strings.LastIndex(line, " ")+1:]
		}
	}
	t.Fatalf("no generated %s in:\n%s", name, out)
	return ""
}

// TestTenantCLIOnAFile: every command, and the file says what the
// commands did; no secret given is ever printed, a generated one once.
func TestTenantCLIOnAFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenants.json")
	env := map[string]string{"CALLPOP_TENANTS_FILE": path, "ACME_CRM": leakTenantCRM}
	out := mustCLI(t, env, "add", "acme.megapbx.ru", "--crm-token-env", "ACME_CRM",
		"--allowed-origins", "https://crm.acme.ru,https://*.acme.ru", "--webhook-rate", "20")
	jwt := generatedIn(t, out, "jwt_secret")
	if strings.Contains(out, "generated crm_token") {
		t.Errorf("a given crm_token is reported as generated:\n%s", out)
	}
	stored := func() *tenant.Tenant {
		t.Helper()
		s, err := file.Open(path, file.Config{}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		tn, ok := s.Get("acme.megapbx.ru")
		if !ok {
			t.Fatal("tenant not in the file")
		}
		return tn
	}
	now := time.Now()
	if tn := stored(); !tn.CRMTokenOK(leakTenantCRM, now) || tn.JWTSecretsAt(now)[0] != jwt || !tn.Enabled ||
		len(tn.AllowedOrigins) != 2 || tn.Limits.WebhookRate != 20 {
		t.Errorf("file after add: %+v", tn.Redacted())
	}
	if _, err := tenantCLI(t, env, "add", "acme.megapbx.ru"); !errors.Is(err, tenant.ErrExists) {
		t.Errorf("add twice: %v", err)
	}
	mustCLI(t, env, "add", "other.megapbx.ru", "--disabled", "--jwks-url", "https://crm.example.com/jwks")

	list := mustCLI(t, env, "list")
	if !strings.Contains(list, "acme.megapbx.ru") || !strings.Contains(list, "other.megapbx.ru") ||
		!strings.Contains(list, tenant.Fingerprint(leakTenantCRM)) || strings.Contains(list, jwt) {
		t.Errorf("list:\n%s", list)
	}
	var asJSON struct{ Tenants []tenant.View }
	if err := json.Unmarshal([]byte(mustCLI(t, env, "list", "--json")), &asJSON); err != nil || len(asJSON.Tenants) != 2 {
		t.Errorf("list --json: %v %v", asJSON, err)
	}
	if show := mustCLI(t, env, "show", "acme.megapbx.ru"); strings.Contains(show, jwt) || !strings.Contains(show, tenant.Fingerprint(jwt)) {
		t.Errorf("show:\n%s", show)
	}

	mustCLI(t, env, "update", "acme.megapbx.ru", "--sessions-per-user", "3", "--pbx-url", "https://acme.megapbx.ru/sys/crm_api.wcgp")
	if tn := stored(); tn.Limits.SessionsPerUser != 3 || tn.PBXURL == "" || tn.Limits.WebhookRate != 20 || len(tn.AllowedOrigins) != 2 {
		t.Errorf("update changed the wrong fields: %+v", tn.Redacted())
	}
	mustCLI(t, env, "disable", "acme.megapbx.ru")
	if stored().Enabled {
		t.Error("disable left the tenant enabled")
	}
	mustCLI(t, env, "enable", "acme.megapbx.ru")
	if !stored().Enabled {
		t.Error("enable left the tenant disabled")
	}

	out = mustCLI(t, env, "rotate-token", "acme.megapbx.ru", "--grace", "2h")
	next := generatedIn(t, out, "crm_token")
	now = time.Now()
	if tn := stored(); !tn.CRMTokenOK(next, now) || !tn.CRMTokenOK(leakTenantCRM, now) || tn.CRMTokenOK(leakTenantCRM, now.Add(2*time.Hour+time.Minute)) {
		t.Error("after rotate-token --grace 2h the old token must pass for 2 h, not after")
	}
	mustCLI(t, env, "rotate-token", "acme.megapbx.ru", "--secret", "jwt_secret", "--grace", "0s")
	if tn := stored(); len(tn.JWTSecretsAt(time.Now())) != 1 || tn.JWTSecretsAt(time.Now())[0] == jwt {
		t.Error("rotate-token --secret jwt_secret --grace 0s kept the old secret")
	}

	// A value on stdin, as `pass show acme | callpop tenant rotate-token … --value-stdin` gives it.
	const piped = "piped-crm-token-0123456789"
	var stdout bytes.Buffer
	if err := runTenant(context.Background(), []string{"rotate-token", "acme.megapbx.ru", "--value-stdin", "--grace", "0s"},
		envOf(env), strings.NewReader(piped+"\n"), &stdout); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), piped) || strings.Contains(stdout.String(), "generated") {
		t.Errorf("rotate-token --value-stdin prints the value or calls it generated:\n%s", stdout.String())
	}
	if tn := stored(); !tn.CRMTokenOK(piped, time.Now()) || tn.CRMTokenOK(next, time.Now()) {
		t.Error("the value from stdin is not the only crm_token after --grace 0s")
	}

	mustCLI(t, env, "delete", "other.megapbx.ru")
	if _, err := tenantCLI(t, env, "show", "other.megapbx.ru"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("show after delete: %v", err)
	}
}

func TestTenantCLIRefusals(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALLPOP_TENANTS_FILE": filepath.Join(t.TempDir(), "t.json")}
	for _, args := range [][]string{
		{"add"},           // no ID
		{"add", "Bad/ID"}, // invalid ID
		{"add", "a.ru", "--crm-token-env", "UNSET_VAR"}, // empty variable
		{"add", "a.ru", "--crm-token", leakTenantCRM},   // secrets are not flags
		{"update", "nobody.ru", "--webhook-rate", "1"},
		{"rotate-token", "nobody.ru"},
		{"frobnicate", "a.ru"},
	} {
		if out, err := tenantCLI(t, env, args...); err == nil {
			t.Errorf("tenant %v succeeded:\n%s", args, out)
		}
	}
	if _, err := tenantCLI(t, nil, "list"); err == nil || !strings.Contains(err.Error(), "CALLPOP_TENANTS_FILE") {
		t.Errorf("list without a store: %v", err)
	}
	for _, sub := range []string{"add", "list", "show", "update", "enable", "disable", "rotate-token", "delete"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"tenant", sub, "-h"}, envOf(nil), &out, &out)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "--tenants-file") {
			t.Errorf("tenant %s -h: %v\n%s", sub, err, out.String())
		}
	}
}

// TestTenantCLIOnRedisReachesARunningNode: with CALLPOP_REDIS_URL the CLI
// writes to Redis, and a node's store following Redis sees it.
func TestTenantCLIOnRedisReachesARunningNode(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	nodeStore := tredis.New(srv.Client(), tredis.Config{}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = nodeStore.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	env := map[string]string{"CALLPOP_REDIS_URL": srv.URL(), "ACME_CRM": leakTenantCRM}
	mustCLI(t, env, "add", "acme.megapbx.ru", "--crm-token-env", "ACME_CRM")
	waitUntil(t, "the node sees the tenant", func() bool { _, ok := nodeStore.Get("acme.megapbx.ru"); return ok })
	mustCLI(t, env, "disable", "acme.megapbx.ru")
	waitUntil(t, "the node sees it disabled", func() bool { tn, _ := nodeStore.Get("acme.megapbx.ru"); return !tn.Enabled })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestAdminAPIIsOnTheAdminListenerOnly runs `callpop serve` with a tenants
// file and an admin token: the admin listener creates a tenant; the same
// requests on the public port reach no admin API and change nothing.
func TestAdminAPIIsOnTheAdminListenerOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenants.json")
	pub, adm := freeLoopbackAddr(t), freeLoopbackAddr(t)
	env := map[string]string{
		"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret, "GOGC": "100",
		"CALLPOP_ADDR": pub, "CALLPOP_ADMIN_ADDR": adm, "CALLPOP_TENANTS_FILE": path,
		"CALLPOP_ADMIN_TOKEN": leakAdminTok, "CALLPOP_DATA_DIR": t.TempDir(), "CALLPOP_LOG_LEVEL": "warn",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"serve"}, envOf(env), io.Discard, logs) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer stop()
	call := func(addr, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+leakAdminTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, "the node answers on both listeners", func() bool {
		a, _ := call(pub, "GET", "/healthz", "")
		b, _ := call(adm, "GET", "/admin/tenants", "")
		return a == 200 && b == 200
	})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/tenants", `{"id":"public.ru"}`},
		{"GET", "/admin/tenants", ""},
		{"DELETE", "/admin/tenants/public.ru", ""},
		{"POST", "/admin/tenants/public.ru/rotate", `{"secret":"crm_token"}`},
	} {
		code, body := call(pub, c.method, c.path, c.body)
		if code != http.StatusNotFound {
			t.Errorf("public port %s %s: %d %s, want 404", c.method, c.path, code, body)
		}
		if strings.Contains(body, "tenant") {
			t.Errorf("public port %s %s answers from the admin API: %s", c.method, c.path, body)
		}
	}
	if code, body := call(adm, "POST", "/admin/tenants", `{"id":"acme.megapbx.ru"}`); code != http.StatusCreated {
		t.Fatalf("admin create: %d %s", code, body)
	}
	s, err := file.Open(path, file.Config{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("acme.megapbx.ru"); !ok || s.Registry().Len() != 1 {
		t.Errorf("the file holds %d tenants after one admin create and refused public calls", s.Registry().Len())
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
	if strings.Contains(logs.String(), leakAdminTok) {
		t.Errorf("the log shows the admin token:\n%s", logs.String())
	}
}

func TestAdminSettingsAreChecked(t *testing.T) {
	t.Parallel()
	base := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}
	for name, extra := range map[string]map[string]string{
		"TokenWithoutAdminAddr": {"CALLPOP_ADMIN_TOKEN": leakAdminTok, "CALLPOP_TENANTS_FILE": "t.json"},
		"TokenWithoutRegistry":  {"CALLPOP_ADMIN_TOKEN": leakAdminTok, "CALLPOP_ADMIN_ADDR": "127.0.0.1:0"},
		"ShortToken":            {"CALLPOP_ADMIN_TOKEN": "short", "CALLPOP_ADMIN_ADDR": "127.0.0.1:0", "CALLPOP_TENANTS_FILE": "t.json"},
		"FileAndRedis":          {"CALLPOP_TENANTS_FILE": "t.json", "CALLPOP_REDIS_URL": "redis://127.0.0.1:1/0"},
		"TenantsRedisNoRedis":   {"CALLPOP_TENANTS_REDIS": "true"},
		"TenantsRedisNotABool":  {"CALLPOP_TENANTS_REDIS": "yes please", "CALLPOP_REDIS_URL": "redis://127.0.0.1:1/0"},
		"TokenOnRedisNoRegistry": {"CALLPOP_ADMIN_TOKEN": leakAdminTok, "CALLPOP_ADMIN_ADDR": "127.0.0.1:0",
			"CALLPOP_REDIS_URL": "redis://127.0.0.1:1/0"},
		"TokenAndTokenFile": {"CALLPOP_ADMIN_TOKEN": leakAdminTok, "CALLPOP_ADMIN_TOKEN_FILE": "x"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		_, err := parseConfig("serve", nil, envOf(env), true)
		if err == nil || strings.Contains(err.Error(), leakAdminTok) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// startServe runs `callpop serve` in process with env (over the test
// secrets and free addresses) until the test ends; it returns the public
// base URL once /healthz answers.
func startServe(t *testing.T, env map[string]string) string {
	t.Helper()
	all := map[string]string{
		"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret, "GOGC": "100",
		"CALLPOP_ADDR": freeLoopbackAddr(t), "CALLPOP_DATA_DIR": t.TempDir(), "CALLPOP_LOG_LEVEL": "warn",
	}
	for k, v := range env {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(all), io.Discard, &syncBuffer{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + all["CALLPOP_ADDR"]
	waitUntil(t, "the node answers", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

// waitWebhook posts incoming to path with crmToken every 300 ms until the
// node answers want: slowly, since each refusal is charged to the
// address's failed-login budget (10 a minute) and a 429 would hide the
// answer sought.
func waitWebhook(t *testing.T, base, path, crmToken string, want int) {
	t.Helper()
	var st int
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if st, body = postTo(t, base, path, crmToken, "wait", incoming...); st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s: %d %s, want %d within 10 s", path, st, body, want)
		}
	}
}

// incoming is a PBX call notification for the tenant path's PBX.
var incoming = []string{"cmd", "event", "type", "INCOMING", "user", "andy", "callid", "reg-1", "phone", "79101234567"}

// TestATenantAddedByTheCLIIsServedWithoutARestart: a node serves the file
// registry; `callpop tenant add` beside it makes the tenant's webhooks
// accepted, `disable` refuses them again, with no restart.
func TestATenantAddedByTheCLIIsServedWithoutARestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenants.json")
	base := startServe(t, map[string]string{"CALLPOP_TENANTS_FILE": path})
	if st, _ := postTo(t, base, "/webhook/acme.megapbx.ru", leakTenantCRM, "before", incoming...); st != http.StatusUnauthorized {
		t.Fatalf("a tenant nobody added: %d, want 401", st)
	}
	env := map[string]string{"CALLPOP_TENANTS_FILE": path, "ACME_CRM": leakTenantCRM}
	mustCLI(t, env, "add", "acme.megapbx.ru", "--crm-token-env", "ACME_CRM")
	waitWebhook(t, base, "/webhook/acme.megapbx.ru", leakTenantCRM, http.StatusOK)
	mustCLI(t, env, "disable", "acme.megapbx.ru")
	waitWebhook(t, base, "/webhook/acme.megapbx.ru", leakTenantCRM, http.StatusUnauthorized)
	// The default tenant is untouched throughout.
	if st, body := postTo(t, base, "/webhook", testCRMToken, "default", incoming...); st != http.StatusOK {
		t.Errorf("default tenant's webhook: %d %s", st, body)
	}
}

// TestATenantAddedOnRedisIsServedByEveryNode: two nodes serve the registry
// in Redis; a tenant added by the CLI is accepted on both, and a rotation
// with a grace accepts old and new tokens on both.
func TestATenantAddedOnRedisIsServedByEveryNode(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	env := map[string]string{"CALLPOP_REDIS_URL": srv.URL(), "CALLPOP_TENANTS_REDIS": "true"}
	nodes := []string{startServe(t, env), startServe(t, env)}
	cli := map[string]string{"CALLPOP_REDIS_URL": srv.URL(), "ACME_CRM": leakTenantCRM}
	mustCLI(t, cli, "add", "acme.megapbx.ru", "--crm-token-env", "ACME_CRM")
	for _, base := range nodes {
		waitWebhook(t, base, "/webhook/acme.megapbx.ru", leakTenantCRM, http.StatusOK)
	}
	next := generatedIn(t, mustCLI(t, cli, "rotate-token", "acme.megapbx.ru", "--grace", "1h"), "crm_token")
	for i, base := range nodes {
		waitWebhook(t, base, "/webhook/acme.megapbx.ru", next, http.StatusOK)
		if st, body := postTo(t, base, "/webhook/acme.megapbx.ru", leakTenantCRM, fmt.Sprintf("old-%d", i), incoming...); st != http.StatusOK {
			t.Errorf("node %d refuses the old token within its grace: %d %s", i, st, body)
		}
	}
}
