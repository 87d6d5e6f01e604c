package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/pbx/sim"
)

const simToken = "sim-pbx-token"

// withSimPBX starts a node wired to a simulated PBX that plays its calls
// back to the node's /webhook, as a real PBX would.
func withSimPBX(t *testing.T) (*node, *sim.PBX) {
	n, p, _ := withSimPBXURL(t)
	return n, p
}

// withSimPBXURL is withSimPBX that also returns the PBX API's URL.
func withSimPBXURL(t *testing.T) (*node, *sim.PBX, string) {
	t.Helper()
	var h atomic.Pointer[sim.PBX]
	pbxSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().ServeHTTP(w, r) }))
	t.Cleanup(pbxSrv.Close)
	n := startNode(t, testConfig(t, "--pbx-url", pbxSrv.URL+"/sys/crm_api.wcgp", "--pbx-token", simToken), nil)
	p := sim.New(sim.Config{
		Token: simToken, CRMURL: n.base + "/webhook", CRMToken: testCRMToken, Step: time.Millisecond,
		Accounts: []sim.Account{{Name: "andy", Ext: "701"}, {Name: "mike", Ext: "702"}},
		Groups:   []sim.Group{{ID: "sales", RealName: "Sales", Members: []string{"andy", "mike"}}},
	}, zaptest.NewLogger(t))
	t.Cleanup(p.Close)
	h.Store(p)
	return n, p, pbxSrv.URL + "/sys/crm_api.wcgp"
}

// api calls the page API as user and decodes the JSON answer.
func (n *node) api(user, method, path, body string) (int, map[string]any) {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.base+path, strings.NewReader(body))
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+n.token(user))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		n.t.Fatalf("%s %s: answer not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func TestClickToCallRingsTheTokensUserAndPopsUpOnTheirSocket(t *testing.T) {
	t.Parallel()
	n, _ := withSimPBX(t)
	andy, mike := n.dial("andy", ""), n.dial("mike", "")
	andy.hello()
	mike.hello()
	st, body := n.api("andy", http.MethodPost, "/api/call", `{"phone":"+7 910 123-45-67"}`)
	if st != http.StatusOK || body["callid"] == "" {
		t.Fatalf("call: %d %v", st, body)
	}
	callid := body["callid"].(string)
	for _, ev := range []string{"OUTGOING", "ACCEPTED", "COMPLETED"} {
		if f := andy.expectCall(ev, callid); f["direction"] != "out" {
			t.Fatalf("%s frame %v", ev, f)
		}
	}
	if f := andy.next(); f["type"] != "history" || f["callid"] != callid {
		t.Fatalf("history frame %v", f)
	}
	// mike saw none of it: his next frame is his own.
	n.event("INCOMING", "mike", "m-1")
	mike.expectCall("INCOMING", "m-1")
	st, body = n.api("andy", http.MethodGet, "/api/calls", "")
	calls, _ := body["calls"].([]any)
	if st != http.StatusOK || len(calls) != 1 || calls[0].(map[string]any)["callid"] != callid {
		t.Fatalf("recent calls: %d %v", st, body)
	}
}

func TestAUserCannotActAsAnother(t *testing.T) {
	t.Parallel()
	n, _ := withSimPBX(t)
	if st, body := n.api("andy", http.MethodPost, "/api/call", `{"phone":"79101234567","user":"mike"}`); st != http.StatusBadRequest {
		t.Fatalf("call naming another user: %d %v", st, body)
	}
	if st, _ := n.api("", http.MethodGet, "/api/calls", ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	// mike's history never shows in andy's calls.
	n.post("cmd", "history", "type", "in", "user", "mike", "phone", "79101234567", "start", "20261125T120000Z",
		"duration", "5", "callid", "hm", "status", "Success")
	if _, body := n.api("andy", http.MethodGet, "/api/calls", ""); len(body["calls"].([]any)) != 0 {
		t.Fatalf("andy reads mike's calls: %v", body)
	}
}

func TestDNDAndDepartmentReceptionGoThroughThePBXAsTheTokensUser(t *testing.T) {
	t.Parallel()
	n, p := withSimPBX(t)
	if st, body := n.api("andy", http.MethodPut, "/api/dnd", `{"state":true}`); st != http.StatusOK || body["state"] != true {
		t.Fatalf("set dnd: %d %v", st, body)
	}
	if !p.DND("andy") || p.DND("mike") {
		t.Fatal("DND set on the wrong user")
	}
	if st, body := n.api("andy", http.MethodGet, "/api/dnd", ""); st != http.StatusOK || body["state"] != true {
		t.Fatalf("get dnd: %d %v", st, body)
	}
	if st, body := n.api("andy", http.MethodPut, "/api/groups/sales", `{"status":"off"}`); st != http.StatusOK {
		t.Fatalf("reception off: %d %v", st, body)
	}
	st, body := n.api("andy", http.MethodGet, "/api/groups", "")
	gs, _ := body["groups"].([]any)
	if st != http.StatusOK || len(gs) != 1 || gs[0].(map[string]any)["status"] != "off" {
		t.Fatalf("groups: %d %v", st, body)
	}
	if _, body := n.api("mike", http.MethodGet, "/api/groups", ""); body["groups"].([]any)[0].(map[string]any)["status"] != "on" {
		t.Fatalf("mike's reception changed: %v", body)
	}
}

func TestPBXActionsAnswer503WhenThePBXIsMissingAnd502WhenItRefuses(t *testing.T) {
	t.Parallel()
	bare := startNode(t, testConfig(t), nil)
	if st, body := bare.api("andy", http.MethodPost, "/api/call", `{"phone":"79101234567"}`); st != http.StatusServiceUnavailable {
		t.Fatalf("no PBX configured: %d %v", st, body)
	}
	down := startNode(t, testConfig(t, "--pbx-url", "http://127.0.0.1:1/sys/crm_api.wcgp", "--pbx-token", "x"), nil)
	if st, body := down.api("andy", http.MethodGet, "/api/dnd", ""); st != http.StatusServiceUnavailable {
		t.Fatalf("PBX unreachable: %d %v", st, body)
	}
	n, _ := withSimPBX(t)
	// The simulator refuses a makeCall for a user it does not know.
	if st, body := n.api("nobody", http.MethodPost, "/api/call", `{"phone":"79101234567"}`); st != http.StatusBadGateway || body["error"] == "" {
		t.Fatalf("PBX refusal: %d %v", st, body)
	}
}

func TestMissedCallsMarkedSeenOnEveryTab(t *testing.T) {
	t.Parallel()
	n, _ := withSimPBX(t)
	tab1, tab2 := n.dial("andy", ""), n.dial("andy", "")
	tab1.hello()
	tab2.hello()
	for _, id := range []string{"m1", "m2"} {
		n.post("cmd", "history", "type", "in", "user", "andy", "phone", "79101234567", "start", "20261125T120000Z",
			"duration", "0", "callid", id, "status", "Missed")
		tab1.next()
		tab2.next()
	}
	if _, body := n.api("andy", http.MethodGet, "/api/calls", ""); body["unseen_missed"] != 2.0 {
		t.Fatalf("unseen before: %v", body)
	}
	if st, _ := n.api("andy", http.MethodPost, "/api/calls/seen", `{"callids":["m1"]}`); st != http.StatusOK {
		t.Fatalf("mark seen: %d", st)
	}
	for _, c := range []*client{tab1, tab2} {
		if f := c.next(); f["type"] != "seen" || f["callid"] != "m1" {
			t.Fatalf("seen frame %v", f)
		}
	}
	n.api("andy", http.MethodPost, "/api/calls/seen", `{"all":true}`)
	if _, body := n.api("andy", http.MethodGet, "/api/calls", ""); body["unseen_missed"] != 0.0 {
		t.Fatalf("unseen after all: %v", body)
	}
}

func TestAPIRateLimitPerUser(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t), nil)
	limited := 0
	for range 60 {
		if st, _ := n.api("andy", http.MethodGet, "/api/calls", ""); st == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("60 requests at once were never limited")
	}
	if st, _ := n.api("mike", http.MethodGet, "/api/calls", ""); st != http.StatusOK {
		t.Fatalf("another user limited too: %d", st)
	}
}

func TestAPIPreflightFromAllowedOriginOnly(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "--allowed-origins", "https://crm.example.com"), nil)
	for origin, want := range map[string]int{"https://crm.example.com": http.StatusNoContent, "https://evil.example.org": http.StatusForbidden} {
		req, _ := http.NewRequest(http.MethodOptions, n.base+"/api/call", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", origin, resp.StatusCode, want)
		}
		if want == http.StatusNoContent && resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("allow-origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}
