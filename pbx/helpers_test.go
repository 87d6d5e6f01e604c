package pbx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/sim"
)

const simToken = "5f317b9f-e86c-41f7-a6fc-c76eb0da0000"

// testAccounts are the document's example employees, plus a direct number.
var testAccounts = []sim.Account{
	{Name: "test", RealName: "Test User", Ext: "701"},
	{Name: "daria", RealName: "Daria Ivanova", Ext: "705"},
	{Name: "andy", RealName: "Andrey Petrov", Ext: "708", Telnum: "79261234567"},
	{Name: "mike", RealName: "Mikhail Semenov", Ext: "702"},
}

var testGroups = []sim.Group{
	{ID: "sales", RealName: "Sales", Ext: "701", Members: []string{"andy", "mike"}},
	{ID: "gr001", RealName: "Accounting", Ext: "0705", Members: []string{"daria"}},
}

// newSimPBX starts a simulated PBX over real HTTP; cfg's Token, Accounts
// and Groups default to the test ones, and Step to a millisecond.
func newSimPBX(tb testing.TB, cfg sim.Config) (*sim.PBX, *httptest.Server) {
	tb.Helper()
	if cfg.Token == "" {
		cfg.Token = simToken
	}
	if cfg.Accounts == nil {
		cfg.Accounts = testAccounts
	}
	if cfg.Groups == nil {
		cfg.Groups = testGroups
	}
	if cfg.Step == 0 {
		cfg.Step = time.Millisecond
	}
	p := sim.New(cfg, zaptest.NewLogger(tb))
	srv := httptest.NewServer(p)
	tb.Cleanup(func() {
		srv.Close()
		p.Close()
	})
	return p, srv
}

// newClient returns a client for url with a fast back-off; cfg's URL and
// Token default to url and simToken.
func newClient(tb testing.TB, url string, cfg pbx.Config) *pbx.Client {
	tb.Helper()
	if cfg.URL == "" {
		cfg.URL = url
	}
	if cfg.Token == "" {
		cfg.Token = simToken
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	cfg.Logger = zaptest.NewLogger(tb)
	c, err := pbx.New(cfg)
	if err != nil {
		tb.Fatalf("pbx.New: %v", err)
	}
	return c
}

// countingServer answers every request with h and counts them.
func countingServer(tb testing.TB, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	return countingServerN(tb, func(w http.ResponseWriter, r *http.Request, _ int64) { h(w, r) })
}

// countingServerN answers every request with h, telling it the request's
// number (from 1), and counts them.
func countingServerN(tb testing.TB, h func(w http.ResponseWriter, r *http.Request, n int64)) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, n.Add(1))
	}))
	tb.Cleanup(srv.Close)
	return srv, &n
}

// eventually polls cond every few milliseconds until it holds or 15 s pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// atomicTime is a settable clock.
type atomicTime struct{ v atomic.Pointer[time.Time] }

func (a *atomicTime) set(t time.Time) { a.v.Store(&t) }
func (a *atomicTime) get() time.Time  { return *a.v.Load() }

func stringReader(s string) *strings.Reader { return strings.NewReader(s) }
