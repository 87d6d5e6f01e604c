package sim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/pbx/sim"
)

const (
	pbxToken = "5f317b9f-e86c-41f7-a6fc-c76eb0da0000"
	crmToken = "76fsd7tfs-crm"
)

var accounts = []sim.Account{
	{Name: "test", RealName: "Test User", Ext: "701"},
	{Name: "daria", RealName: "Daria Ivanova", Ext: "705"},
	{Name: "andy", RealName: "Andrey Petrov", Ext: "708", Telnum: "79261234567"},
	{Name: "mike", RealName: "Mikhail Semenov", Ext: "702"},
}

var groups = []sim.Group{
	{ID: "sales", RealName: "Sales", Ext: "701", Members: []string{"andy", "mike", "daria", "test"}},
	{ID: "gr001", RealName: "Accounting", Ext: "0705", Members: []string{"daria", "ghost"}},
}

// crm is a fake callpop webhook endpoint that records every form posted.
type crm struct {
	tb  testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	posts  []url.Values                   // guarded by mu
	answer func(url.Values) (int, string) // guarded by mu
}

// newCRM starts a CRM answering contact with a contact and anything else
// with {}.
func newCRM(tb testing.TB) *crm {
	tb.Helper()
	c := &crm{tb: tb, answer: func(f url.Values) (int, string) {
		if f.Get("cmd") == "contact" {
			return http.StatusOK, `{"contact_name":"ООО Рога и Копыта","responsible":"andy"}`
		}
		return http.StatusOK, `{}`
	}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			tb.Errorf("CRM got %s with %q", r.Method, r.Header.Get("Content-Type"))
		}
		body, _ := io.ReadAll(r.Body)
		f, err := url.ParseQuery(string(body))
		if err != nil {
			tb.Errorf("CRM got an unparseable body %q", body)
		}
		c.mu.Lock()
		c.posts = append(c.posts, f)
		answer := c.answer
		c.mu.Unlock()
		status, out := answer(f)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	tb.Cleanup(c.srv.Close)
	return c
}

// setAnswer replaces how the CRM answers.
func (c *crm) setAnswer(f func(url.Values) (int, string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answer = f
}

// forms returns the posts so far, optionally only those of callid.
func (c *crm) forms(callid ...string) []url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []url.Values
	for _, f := range c.posts {
		if len(callid) == 0 || f.Get("callid") == callid[0] {
			out = append(out, f)
		}
	}
	return out
}

// waitFor polls until cond holds for the posts, or fails after 15 s.
func (c *crm) waitFor(what string, cond func([]url.Values) bool) []url.Values {
	c.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		fs := c.forms()
		if cond(fs) {
			return fs
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("timed out waiting for %s; posts: %v", what, fs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// newPBX returns a simulated PBX posting to crmURL (may be empty), with the
// test accounts and groups and a 1 ms step; mods adjust the config.
func newPBX(tb testing.TB, crmURL string, mods ...func(*sim.Config)) *sim.PBX {
	tb.Helper()
	cfg := sim.Config{
		Token:     pbxToken,
		CRMURL:    crmURL,
		CRMToken:  crmToken,
		Accounts:  accounts,
		Groups:    groups,
		Step:      time.Millisecond,
		RecordURL: "https://records.example/",
	}
	for _, m := range mods {
		m(&cfg)
	}
	p := sim.New(cfg, zaptest.NewLogger(tb))
	tb.Cleanup(p.Close)
	return p
}

// do sends one API request straight to the handler.
func do(p *sim.PBX, method string, form url.Values) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	var r *http.Request
	if method == http.MethodGet {
		r = httptest.NewRequest(method, "/sys/crm_api.wcgp?"+form.Encode(), nil)
	} else {
		r = httptest.NewRequest(method, "/sys/crm_api.wcgp", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	p.ServeHTTP(w, r)
	return w
}

// cmd builds a request form with the right token.
func cmd(name string, kv ...string) url.Values {
	f := url.Values{"cmd": {name}, "token": {pbxToken}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// steps is the cmd and type of each form, as "event INCOMING andy".
func steps(fs []url.Values) []string {
	var out []string
	for _, f := range fs {
		s := f.Get("cmd")
		if t := f.Get("type"); t != "" && f.Get("cmd") == "event" {
			s += " " + t
		}
		if u := f.Get("user"); u != "" {
			s += " " + u
		}
		out = append(out, s)
	}
	return out
}
