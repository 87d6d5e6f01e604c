package contacts_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
)

const (
	testPhone = "79101234567"
	acmeJSON  = `{"contact_name":"Рога и Копыта","responsible":"andy"}`
)

var acme = event.Contact{Name: "Рога и Копыта", Responsible: "andy"}

// crmServer is a CRM over real HTTP that counts the requests it gets.
type crmServer struct {
	*httptest.Server
	hits atomic.Int64
	stop chan struct{} // closed when the test ends, before the server closes
}

// newCRMServer starts a CRM answering with h; it is closed when the test
// ends, after every CRM directory the test made.
func newCRMServer(tb testing.TB, h http.HandlerFunc) *crmServer {
	tb.Helper()
	s := &crmServer{stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	tb.Cleanup(func() {
		close(s.stop)
		s.Close() // waits for the handlers
	})
	return s
}

// newHangingCRMServer starts a CRM that accepts requests and never answers
// them until the test ends, whatever the client does.
func newHangingCRMServer(tb testing.TB) *crmServer {
	tb.Helper()
	var s *crmServer
	ready := make(chan struct{})
	s = newCRMServer(tb, func(http.ResponseWriter, *http.Request) {
		<-ready
		<-s.stop
	})
	close(ready)
	return s
}

// template is the server's look-up URL template.
func (s *crmServer) template() string { return s.URL + "/api/contact?phone={phone}" }

// answer is a handler answering status with body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// newTestCRM returns a CRM directory closed when the test ends.
func newTestCRM(tb testing.TB, cfg contacts.CRMConfig, cache contacts.Cache) *contacts.CRM {
	tb.Helper()
	crm, err := contacts.NewCRM(cfg, cache, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatalf("NewCRM: %v", err)
	}
	tb.Cleanup(func() { _ = crm.Close() })
	return crm
}

// clock is a settable time source for cache expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustKnow(tb testing.TB, d event.Directory, phone string, want event.Contact) {
	tb.Helper()
	c, ok, err := d.Lookup(tb.Context(), phone)
	if err != nil || !ok || c != want {
		tb.Fatalf("Lookup(%q) = %+v, %v, %v; want %+v", phone, c, ok, err, want)
	}
}

func mustNotKnow(tb testing.TB, d event.Directory, phone string) {
	tb.Helper()
	if c, ok, err := d.Lookup(tb.Context(), phone); err != nil || ok {
		tb.Fatalf("Lookup(%q) = %+v, %v, %v; want unknown", phone, c, ok, err)
	}
}

func wantHits(tb testing.TB, s *crmServer, want int64) {
	tb.Helper()
	if got := s.hits.Load(); got != want {
		tb.Errorf("CRM got %d requests, want %d", got, want)
	}
}

func TestCRMKnownNumberShowsNameAndResponsible(t *testing.T) {
	t.Parallel()
	var gotQuery, gotAuth, gotAccept string
	srv := newCRMServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotAuth, gotAccept = r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Accept")
		answer(http.StatusOK, acmeJSON)(w, r)
	})
	crm := newTestCRM(t, contacts.CRMConfig{
		URLTemplate: srv.URL + "/api/contact?key=k1&phone={phone}",
		Header:      http.Header{"Authorization": {"Bearer crm-secret"}},
	}, nil)
	mustKnow(t, crm, "+7 (910) 123-45-67", acme)
	if gotQuery != "key=k1&phone=79101234567" {
		t.Errorf("CRM got query %q, want the normalized number substituted", gotQuery)
	}
	if gotAuth != "Bearer crm-secret" {
		t.Errorf("CRM got Authorization %q, want the configured header", gotAuth)
	}
	if gotAccept != "application/json" {
		t.Errorf("CRM got Accept %q, want application/json", gotAccept)
	}
}

func TestCRMNumberInThePathIsSubstituted(t *testing.T) {
	t.Parallel()
	var gotPath string
	srv := newCRMServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		answer(http.StatusOK, acmeJSON)(w, r)
	})
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.URL + "/contacts/{phone}.json"}, nil)
	mustKnow(t, crm, "89101234567", acme)
	if gotPath != "/contacts/79101234567.json" {
		t.Errorf("CRM got path %q", gotPath)
	}
}

func TestCRMNumberFormsShareOneCacheEntry(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusOK, acmeJSON))
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil)
	for _, phone := range []string{"79101234567", "89101234567", "+7 (910) 123-45-67", "9101234567"} {
		mustKnow(t, crm, phone, acme)
	}
	wantHits(t, srv, 1)
}

func TestCRMAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		want    event.Contact
		known   bool
		wantErr error // nil: an answer, cached
	}{
		{name: "PBXShapeNamesContact", status: 200, body: acmeJSON, want: acme, known: true},
		{name: "NameFieldNamesContact", status: 200, body: `{"name":"Рога и Копыта","responsible":"andy"}`, want: acme, known: true},
		{name: "ContactNameWinsOverName", status: 200, body: `{"name":"Other","contact_name":"Рога и Копыта","responsible":"andy"}`, want: acme, known: true},
		{name: "ResponsibleAloneIsKnown", status: 200, body: `{"responsible":"andy"}`, want: event.Contact{Responsible: "andy"}, known: true},
		{name: "ExtraFieldsAreIgnored", status: 200, body: `{"contact_name":"Рога и Копыта","responsible":"andy","id":42,"tags":["vip"]}`, want: acme, known: true},
		{name: "SpacesAreTrimmed", status: 200, body: `{"contact_name":"  Рога и Копыта ","responsible":" andy"}`, want: acme, known: true},
		{name: "EmptyObjectIsUnknown", status: 200, body: `{}`},
		{name: "EmptyNamesAreUnknown", status: 200, body: `{"contact_name":"","responsible":"  "}`},
		{name: "NullNamesAreUnknown", status: 200, body: `{"contact_name":null,"name":null}`},
		{name: "NotFoundIsUnknown", status: 404, body: `{"error":"not found"}`},
		{name: "NoContentIsUnknown", status: 204},
		{name: "ServerErrorFails", status: 500, body: `{"error":"db down"}`, wantErr: contacts.ErrCRMStatus},
		{name: "UnauthorizedFails", status: 401, body: `{"error":"bad key"}`, wantErr: contacts.ErrCRMStatus},
		{name: "NotModifiedFails", status: 304, wantErr: contacts.ErrCRMStatus},
		{name: "EmptyBodyFails", status: 200, body: ``, wantErr: contacts.ErrCRMAnswer},
		{name: "HTMLFails", status: 200, body: `<html>login</html>`, wantErr: contacts.ErrCRMAnswer},
		{name: "TruncatedJSONFails", status: 200, body: `{"contact_name":"Ac`, wantErr: contacts.ErrCRMAnswer},
		{name: "ArrayFails", status: 200, body: `[` + acmeJSON + `]`, wantErr: contacts.ErrCRMAnswer},
		{name: "NumberForNameFails", status: 200, body: `{"contact_name":42}`, wantErr: contacts.ErrCRMAnswer},
		{name: "InvalidUTF8Fails", status: 200, body: "{\"contact_name\":\"Ac\xffme\"}", wantErr: contacts.ErrCRMAnswer},
		{name: "LoneSurrogateFails", status: 200, body: `{"contact_name":"Ac\ud800me"}`, wantErr: contacts.ErrCRMAnswer},
		{name: "ControlCharacterFails", status: 200, body: `{"contact_name":"Ac\u0007me"}`, wantErr: contacts.ErrCRMAnswer},
		{name: "NewlineInResponsibleFails", status: 200, body: `{"contact_name":"Acme","responsible":"an\ndy"}`, wantErr: contacts.ErrCRMAnswer},
		{name: "OverlongNameFails", status: 200, body: `{"contact_name":"` + strings.Repeat("я", contacts.MaxNameLen) + `"}`, wantErr: contacts.ErrCRMAnswer},
		{name: "OverlongResponsibleFails", status: 200, body: `{"responsible":"` + strings.Repeat("a", contacts.MaxResponsibleLen+1) + `"}`, wantErr: contacts.ErrCRMAnswer},
		{name: "BodyOverLimitFails", status: 200, body: `{"contact_name":"Acme","pad":"` + strings.Repeat("x", contacts.MaxCRMAnswer) + `"}`, wantErr: contacts.ErrCRMAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newCRMServer(t, answer(tc.status, tc.body))
			crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil)
			for range 2 {
				c, ok, err := crm.Lookup(t.Context(), testPhone)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) || ok {
						t.Fatalf("Lookup = %+v, %v, %v; want error %v", c, ok, err, tc.wantErr)
					}
					continue
				}
				if err != nil || ok != tc.known || c != tc.want {
					t.Fatalf("Lookup = %+v, %v, %v; want %+v, %v", c, ok, err, tc.want, tc.known)
				}
			}
			if tc.wantErr != nil {
				wantHits(t, srv, 2) // errors are not cached
			} else {
				wantHits(t, srv, 1) // the second look-up is served from the cache
			}
		})
	}
}

func TestCRMSlowAnswerFailsWithinTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 250 * time.Millisecond
	srv := newCRMServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * timeout):
		case <-r.Context().Done():
		}
		answer(http.StatusOK, acmeJSON)(w, r)
	})
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: timeout}, nil)
	start := time.Now()
	_, ok, err := crm.Lookup(t.Context(), testPhone)
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || ok {
		t.Errorf("Lookup = %v, %v; want a deadline error", ok, err)
	}
	if elapsed > 4*timeout {
		t.Errorf("Lookup took %v with a %v timeout", elapsed, timeout)
	}
}

func TestCRMCallerDeadlineWinsOverLongerTimeout(t *testing.T) {
	t.Parallel()
	const budget = 250 * time.Millisecond
	srv := newHangingCRMServer(t)
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: time.Minute}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	start := time.Now()
	_, ok, err := crm.Lookup(ctx, testPhone)
	if elapsed := time.Since(start); elapsed > 4*budget {
		t.Errorf("Lookup took %v with a %v deadline", elapsed, budget)
	}
	if !errors.Is(err, context.DeadlineExceeded) || ok {
		t.Errorf("Lookup = %v, %v; want a deadline error", ok, err)
	}
}

func TestCRMHangingServerNeverHoldsTheCallerPastItsDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 250 * time.Millisecond
	srv := newHangingCRMServer(t)
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: timeout}, nil)
	for range 2 { // the failed flight is not cached: the second asks again
		start := time.Now()
		_, ok, err := crm.Lookup(t.Context(), testPhone)
		if elapsed := time.Since(start); elapsed > 4*timeout {
			t.Errorf("Lookup took %v with a %v timeout", elapsed, timeout)
		}
		if !errors.Is(err, context.DeadlineExceeded) || ok {
			t.Errorf("Lookup = %v, %v; want a deadline error", ok, err)
		}
	}
	// Close returns promptly too: it cancels what is in flight.
	start := time.Now()
	_ = crm.Close()
	if elapsed := time.Since(start); elapsed > 4*timeout {
		t.Errorf("Close took %v", elapsed)
	}
}

func TestCRMAnswerAfterCallerLeftIsCachedForNextLookup(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newCRMServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		answer(http.StatusOK, acmeJSON)(w, r)
	})
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: time.Minute}, nil)
	// The PBX's contact request gives up first...
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := crm.Lookup(ctx, testPhone); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup = %v; want a deadline error", err)
	}
	// ...and the call's INCOMING event, a moment later, gets the answer of
	// the same request.
	close(release)
	mustKnow(t, crm, testPhone, acme)
	mustKnow(t, crm, testPhone, acme)
	wantHits(t, srv, 1)
}

func TestCRMConcurrentLookupsOfOneNumberShareOneRequest(t *testing.T) {
	t.Parallel()
	const callers = 16
	release := make(chan struct{})
	srv := newCRMServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		answer(http.StatusOK, acmeJSON)(w, r)
	})
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: time.Minute}, nil)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			phone := []string{"79101234567", "89101234567"}[i%2]
			c, ok, err := crm.Lookup(t.Context(), phone)
			if err != nil || !ok || c != acme {
				t.Errorf("Lookup = %+v, %v, %v; want %+v", c, ok, err, acme)
			}
		})
	}
	waitFor(t, func() bool { return crm.Waiting(testPhone) == callers })
	close(release)
	wg.Wait()
	wantHits(t, srv, 1)
}

func TestCRMUnknownNumberIsCachedUntilNegativeTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newCRMServer(t, answer(http.StatusOK, `{}`))
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()},
		contacts.NewMemoryCache(contacts.MemoryCacheConfig{Now: clk.Now}))
	mustNotKnow(t, crm, testPhone)
	mustNotKnow(t, crm, testPhone)
	wantHits(t, srv, 1)
	waitLanded(t, crm, testPhone) // the answer is cached as of now
	clk.Advance(contacts.DefaultNegativeTTL - time.Second)
	mustNotKnow(t, crm, testPhone)
	wantHits(t, srv, 1)
	clk.Advance(time.Second)
	mustNotKnow(t, crm, testPhone)
	wantHits(t, srv, 2)
}

func TestCRMKnownNumberIsCachedUntilCacheTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var name atomic.Value
	name.Store("Рога и Копыта")
	srv := newCRMServer(t, func(w http.ResponseWriter, r *http.Request) {
		answer(http.StatusOK, `{"contact_name":"`+name.Load().(string)+`"}`)(w, r)
	})
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()},
		contacts.NewMemoryCache(contacts.MemoryCacheConfig{Now: clk.Now}))
	mustKnow(t, crm, testPhone, event.Contact{Name: "Рога и Копыта"})
	waitLanded(t, crm, testPhone) // the answer is cached as of now
	name.Store("ООО Ромашка")     // renamed in the CRM
	clk.Advance(contacts.DefaultNegativeTTL + time.Second)
	mustKnow(t, crm, testPhone, event.Contact{Name: "Рога и Копыта"}) // known answers live longer
	clk.Advance(contacts.DefaultCacheTTL - contacts.DefaultNegativeTTL - time.Second)
	mustKnow(t, crm, testPhone, event.Contact{Name: "ООО Ромашка"})
	wantHits(t, srv, 2)
}

func TestCRMNegativeTTLDisablesCachingOfUnknownNumbers(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusNotFound, ``))
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), NegativeTTL: -1}, nil)
	mustNotKnow(t, crm, testPhone)
	mustNotKnow(t, crm, testPhone)
	wantHits(t, srv, 2)
}

func TestCRMNumberWithoutDigitsIsUnknownWithoutRequest(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusOK, acmeJSON))
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil)
	for _, phone := range []string{"", "anonymous", "+"} {
		mustNotKnow(t, crm, phone)
	}
	wantHits(t, srv, 0)
}

// brokenCache fails every call, or with stall, blocks until its context ends.
type brokenCache struct {
	stall bool
	sets  atomic.Int64
}

func (b *brokenCache) Get(ctx context.Context, _ string) (contacts.Answer, bool, error) {
	if b.stall {
		<-ctx.Done()
		return contacts.Answer{}, false, ctx.Err()
	}
	return contacts.Answer{}, false, errors.New("cache down")
}

func (b *brokenCache) Set(ctx context.Context, _ string, _ contacts.Answer, _ time.Duration) error {
	b.sets.Add(1)
	if b.stall {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("cache down")
}

func TestCRMFailingCacheStillAnswersFromCRM(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusOK, acmeJSON))
	cache := &brokenCache{}
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, cache)
	mustKnow(t, crm, testPhone, acme)
	mustKnow(t, crm, testPhone, acme)
	_ = crm.Close() // waits for the cache write
	if cache.sets.Load() == 0 {
		t.Error("the answer was never offered to the cache")
	}
}

func TestCRMStalledCacheLeavesTimeForCRM(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	srv := newCRMServer(t, answer(http.StatusOK, acmeJSON))
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: timeout}, &brokenCache{stall: true})
	start := time.Now()
	mustKnow(t, crm, testPhone, acme)
	if elapsed := time.Since(start); elapsed > 2*timeout {
		t.Errorf("Lookup took %v with a %v timeout", elapsed, timeout)
	}
}

func TestCRMErrorsDoNotLeakURL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: url + "/c?key=SECRETKEY&phone={phone}"}, nil)
	_, ok, err := crm.Lookup(t.Context(), testPhone)
	if err == nil || ok {
		t.Fatalf("Lookup = %v, %v; want a connection error", ok, err)
	}
	if msg := err.Error(); strings.Contains(msg, "SECRETKEY") || strings.Contains(msg, testPhone) {
		t.Errorf("error %q shows the URL", msg)
	}
}

func TestCRMLookupAfterCloseFails(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusOK, acmeJSON))
	crm := newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil)
	mustKnow(t, crm, testPhone, acme)
	if err := crm.Close(); err != nil {
		t.Fatal(err)
	}
	if err := crm.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := crm.Lookup(t.Context(), testPhone); !errors.Is(err, contacts.ErrClosed) {
		t.Errorf("Lookup after Close = %v, want ErrClosed", err)
	}
}

func TestNewCRMRejectsBadTemplate(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{
		"",
		"https://crm.example.com/api/contact", // no {phone}
		"https://crm.example.com/api/contact?phone={PHONE}", // placeholder is case-sensitive
		"crm.example.com/api/contact?phone={phone}",         // no scheme
		"ftp://crm.example.com/{phone}",
		"https:///api/contact?phone={phone}", // no host
		"http://crm.example.com:port/{phone}",
	} {
		if _, err := contacts.NewCRM(contacts.CRMConfig{URLTemplate: tmpl}, nil, nil); err == nil {
			t.Errorf("NewCRM(%q) succeeded, want an error", tmpl)
		} else if !strings.HasPrefix(err.Error(), "contacts: ") {
			t.Errorf("NewCRM(%q) error %q lacks the package prefix", tmpl, err)
		}
	}
}

// waitLanded waits until crm has cached its answer for phone: callers get
// the answer before it is written to the cache.
func waitLanded(tb testing.TB, crm *contacts.CRM, phone string) {
	tb.Helper()
	waitFor(tb, func() bool { return !crm.InFlight(phone) })
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{acmeJSON, `{}`, `{"name":"x"}`, `null`, `[]`, `{"contact_name":"\u0000"}`, "{\"name\":\"\xff\"}", `{"responsible":" a "}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := contacts.ParseAnswer(body)
		if err != nil {
			if !errors.Is(err, contacts.ErrCRMAnswer) {
				t.Fatalf("error %v is not ErrCRMAnswer", err)
			}
			return
		}
		if a.Known != (a.Contact != event.Contact{}) {
			t.Fatalf("Known %v for %+v", a.Known, a.Contact)
		}
		for _, s := range []string{a.Contact.Name, a.Contact.Responsible} {
			if strings.TrimSpace(s) != s || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) {
				t.Fatalf("unclean text %q", s)
			}
		}
		if len(a.Contact.Name) > contacts.MaxNameLen || len(a.Contact.Responsible) > contacts.MaxResponsibleLen {
			t.Fatalf("overlong %+v", a.Contact)
		}
	})
}
