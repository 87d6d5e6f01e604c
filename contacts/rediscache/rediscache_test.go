package rediscache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/contacts/rediscache"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

// TestMain fails the package when any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const phone = "79101234567"

var acme = event.Contact{Name: "Рога и Копыта", Responsible: "andy"}

func TestCacheRoundTripsKnownAndUnknownAnswers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	c := rediscache.New(rdb)
	ctx := t.Context()

	if a, hit, err := c.Get(ctx, phone); err != nil || hit {
		t.Fatalf("Get on empty Redis = %+v, %v, %v; want a miss", a, hit, err)
	}
	if err := c.Set(ctx, phone, contacts.Answer{Contact: acme, Known: true}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "74950000000", contacts.Answer{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if a, hit, err := c.Get(ctx, phone); err != nil || !hit || a != (contacts.Answer{Contact: acme, Known: true}) {
		t.Errorf("Get(known) = %+v, %v, %v", a, hit, err)
	}
	if a, hit, err := c.Get(ctx, "74950000000"); err != nil || !hit || a != (contacts.Answer{}) {
		t.Errorf("Get(unknown) = %+v, %v, %v; want a cached unknown", a, hit, err)
	}

	// The stored form: one key per number, JSON, expiring.
	if v, err := rdb.Get(ctx, "callpop:contact:"+phone).Result(); err != nil ||
		v != `{"known":true,"name":"Рога и Копыта","responsible":"andy"}` {
		t.Errorf("stored value = %q, %v", v, err)
	}
	if ttl, err := rdb.TTL(ctx, "callpop:contact:74950000000").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL of the unknown number's key = %v, %v; want up to a minute", ttl, err)
	}

	// A ttl of zero drops the number.
	if err := c.Set(ctx, phone, contacts.Answer{Contact: acme, Known: true}, 0); err != nil {
		t.Fatal(err)
	}
	if _, hit, err := c.Get(ctx, phone); err != nil || hit {
		t.Errorf("Get after Set with ttl 0 = %v, %v; want a miss", hit, err)
	}
}

func TestCacheEntryExpires(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := rediscache.New(srv.Client())
	if err := c.Set(t.Context(), phone, contacts.Answer{Contact: acme, Known: true}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, hit, err := c.Get(t.Context(), phone)
		if err != nil {
			t.Fatal(err)
		}
		if !hit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("entry still cached 5s after a 50ms TTL")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCacheUnreadableValueIsAnError(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	if err := rdb.Set(t.Context(), "callpop:contact:"+phone, "not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, hit, err := rediscache.New(rdb).Get(t.Context(), phone); err == nil || hit {
		t.Errorf("Get = %v, %v; want an error", hit, err)
	}
}

// crmServer is a CRM over real HTTP that counts its requests.
func crmServer(tb testing.TB, body string) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, body)
	}))
	tb.Cleanup(srv.Close)
	return srv, &hits
}

// node is one callpop node's CRM directory, on its own Redis client.
func node(tb testing.TB, rdb goredis.UniversalClient, crmURL string) *contacts.CRM {
	tb.Helper()
	crm, err := contacts.NewCRM(contacts.CRMConfig{URLTemplate: crmURL + "/api/contact?phone={phone}"},
		rediscache.New(rdb), zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = crm.Close() })
	return crm
}

func TestTwoNodesShareOneCRMAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		body  string
		want  event.Contact
		known bool
	}{
		{"Known", `{"contact_name":"Рога и Копыта","responsible":"andy"}`, acme, true},
		{"Unknown", `{}`, event.Contact{}, false},
		{"KnownOnACluster", `{"contact_name":"Рога и Копыта","responsible":"andy"}`, acme, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rdb goredis.UniversalClient
			if strings.HasSuffix(tc.name, "OnACluster") {
				rdb = redistest.StartCluster(t).Client()
			} else {
				rdb = redistest.Start(t).Client()
			}
			crmSrv, hits := crmServer(t, tc.body)
			a, b := node(t, rdb, crmSrv.URL), node(t, rdb, crmSrv.URL)

			if c, ok, err := a.Lookup(t.Context(), "89101234567"); err != nil || ok != tc.known || c != tc.want {
				t.Fatalf("node A: Lookup = %+v, %v, %v", c, ok, err)
			}
			_ = a.Close() // node A has written its answer to Redis (and leaves)
			if c, ok, err := b.Lookup(t.Context(), "+79101234567"); err != nil || ok != tc.known || c != tc.want {
				t.Fatalf("node B: Lookup = %+v, %v, %v", c, ok, err)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("CRM got %d requests for two look-ups on two nodes, want 1", n)
			}
		})
	}
}

func TestRedisDownStillAnswersFromCRM(t *testing.T) {
	t.Parallel()
	rsrv := redistest.Start(t)
	crmSrv, hits := crmServer(t, `{"contact_name":"Рога и Копыта","responsible":"andy"}`)
	rdb := goredis.NewClient(&goredis.Options{Addr: rsrv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	crm, err := contacts.NewCRM(contacts.CRMConfig{URLTemplate: crmSrv.URL + "/c?phone={phone}"},
		rediscache.New(rdb), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crm.Close() })
	rsrv.Kill()
	for _, phone := range []string{"79101234567", "74950000000"} {
		start := time.Now()
		if c, ok, err := crm.Lookup(t.Context(), phone); err != nil || !ok || c != acme {
			t.Fatalf("Lookup with Redis down = %+v, %v, %v; want %+v", c, ok, err, acme)
		}
		if elapsed := time.Since(start); elapsed > contacts.DefaultCRMTimeout {
			t.Errorf("Lookup took %v", elapsed)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("CRM got %d requests for two numbers, want 2", n)
	}
}
