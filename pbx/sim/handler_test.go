package sim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/callpop/callpop/pbx"
)

func TestWrongOrMissingTokenAnswers401JSON(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	for _, f := range []map[string][]string{
		{"cmd": {"accounts"}, "token": {"wrong"}},
		{"cmd": {"accounts"}},
		{"cmd": {"no-such-command"}, "token": {pbxToken + "x"}}, // the token comes first
		{"cmd": {"accounts"}, "token": {""}},
	} {
		w := do(p, http.MethodPost, f)
		if w.Code != http.StatusUnauthorized || strings.TrimSpace(w.Body.String()) != `{"error":"Invalid token"}` ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%v: %d %q %q", f, w.Code, w.Body, w.Header().Get("Content-Type"))
		}
	}
}

func TestCommandNamesMatchTheDocumentsSpellings(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	for _, name := range []string{
		"accounts", "ACCOUNTS", "groups", "makeCall", "makecall", "history", " history ",
		"subscribeOnCalls", "subscribeoncalls", "SubscribeOnCalls",
		"subscriptionStatus", "subscriptionstatus", "subscribtionstatus", "subscribtionStatus",
		"set_dnd", "SET_DND", "get_dnd", "Get_Dnd",
	} {
		f := cmd(name, "user", "andy", "phone", "79101234567", "group_id", "sales", "status", "on", "state", "false")
		if w := do(p, http.MethodPost, f); w.Code != http.StatusOK {
			t.Errorf("cmd=%q: %d %s", name, w.Code, w.Body)
		}
	}
}

func TestBadParametersAnswer400JSON(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	for _, kv := range [][]string{
		{"cmd", "nonsense"},
		{"cmd", ""},
		{"cmd", "subscriptionsstatus"},
		{"cmd", "groups", "user", "nobody"},
		{"cmd", "makeCall", "user", "andy"},
		{"cmd", "makeCall", "phone", "79101234567"},
		{"cmd", "makeCall", "user", "nobody", "phone", "79101234567"},
		{"cmd", "makeCall", "user", "andy", "phone", "call me"},
		{"cmd", "history", "period", "decade"},
		{"cmd", "history", "type", "lost"},
		{"cmd", "history", "start", "2017-07-03"},
		{"cmd", "history", "end", "yesterday"},
		{"cmd", "history", "start", "20170703T121110Z", "end", "20170702T121110Z"},
		{"cmd", "history", "limit", "-1"},
		{"cmd", "history", "limit", "ten"},
		{"cmd", "subscribeOnCalls", "user", "andy"},
		{"cmd", "subscribeOnCalls", "user", "andy", "status", "maybe"},
		{"cmd", "subscribeOnCalls", "user", "nobody", "status", "on"},
		{"cmd", "subscribeOnCalls", "user", "andy", "group_id", "gr001", "status", "on"}, // not a member
		{"cmd", "subscribeOnCalls", "user", "andy", "group_id", "nogroup", "status", "on"},
		{"cmd", "subscriptionStatus", "user", "andy"},
		{"cmd", "subscriptionStatus", "group_id", "sales"},
		{"cmd", "set_dnd", "user", "andy"},
		{"cmd", "set_dnd", "user", "andy", "state", "yes"},
		{"cmd", "set_dnd", "user", "nobody", "state", "true"},
		{"cmd", "get_dnd"},
		{"cmd", "get_dnd", "user", "nobody"},
	} {
		f := cmd(kv[1], kv[2:]...)
		w := do(p, http.MethodPost, f)
		if w.Code != http.StatusBadRequest || strings.TrimSpace(w.Body.String()) != `{"error":"Invalid parameters"}` {
			t.Errorf("%v: %d %q", kv, w.Code, w.Body)
		}
	}
}

func TestReadsMayBeGETWritesOnlyPOST(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	for _, name := range []string{"accounts", "groups", "history", "get_dnd", "subscriptionStatus"} {
		if w := do(p, http.MethodGet, cmd(name, "user", "andy", "group_id", "sales")); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", name, w.Code, w.Body)
		}
	}
	for _, name := range []string{"makeCall", "set_dnd", "subscribeOnCalls"} {
		w := do(p, http.MethodGet, cmd(name, "user", "andy", "phone", "79101234567", "state", "true", "status", "on"))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("GET %s: %d", name, w.Code)
		}
	}
	if w := do(p, http.MethodPut, cmd("accounts")); w.Code != http.StatusMethodNotAllowed || !json.Valid(w.Body.Bytes()) {
		t.Errorf("PUT: %d %q", w.Code, w.Body)
	}
}

func TestGroupsServeADigitsExtAsANumber(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	w := do(p, http.MethodPost, cmd("groups"))
	want := `[{"id":"sales","realName":"Sales","ext":701},{"id":"gr001","realName":"Accounting","ext":"0705"}]`
	if got := strings.TrimSpace(w.Body.String()); got != want {
		t.Errorf("groups answer\n got %s\nwant %s", got, want)
	}
}

func TestGroupMembersThatAreNoAccountAreDropped(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	// gr001 lists "ghost", who is no account: subscribing him fails.
	if w := do(p, http.MethodPost, cmd("subscriptionStatus", "user", "ghost", "group_id", "gr001")); w.Code != http.StatusBadRequest {
		t.Errorf("ghost: %d %s", w.Code, w.Body)
	}
}

func TestHistoryAnswersCSVWithHeader(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	if _, err := p.MissedCall(t.Context(), "andy", "89101234567"); err != nil {
		t.Fatal(err)
	}
	w := do(p, http.MethodPost, cmd("history"))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	if len(lines) != 2 || lines[0] != "UID,type,client,account,via,start,wait,duration,record" {
		t.Fatalf("CSV %q", w.Body)
	}
	recs, err := pbx.ParseHistory(w.Body)
	if err != nil || len(recs) != 1 || recs[0].Type != pbx.TypeMissed || recs[0].Record != "" {
		t.Errorf("records %+v, %v", recs, err)
	}
}

func TestUsersResolveByLoginTenantExtAndTelnum(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	for _, user := range []string{"andy", "ANDY", "andy@acme", "708", "79261234567", "+79261234567"} {
		if w := do(p, http.MethodPost, cmd("set_dnd", "user", user, "state", "true")); w.Code != http.StatusOK {
			t.Errorf("user %q: %d", user, w.Code)
		}
	}
	if !p.DND("andy") {
		t.Error("andy's DND is off")
	}
	w := do(p, http.MethodPost, cmd("get_dnd", "user", "Andy@acme"))
	if got := strings.TrimSpace(w.Body.String()); got != `{"state":true}` {
		t.Errorf("get_dnd: %s", got)
	}
}
