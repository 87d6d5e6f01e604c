package guard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

func TestClientIPBelievesForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted, err := ParsePrefixes("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		peer, xff, want string
	}{
		{"203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},               // untrusted peer: header ignored
		{"127.0.0.1:1234", "198.51.100.7", "198.51.100.7"},           // trusted proxy
		{"127.0.0.1:1234", "6.6.6.6, 198.51.100.7", "198.51.100.7"},  // a client's own claim on the left is not believed
		{"127.0.0.1:1234", "198.51.100.7, 10.1.2.3", "198.51.100.7"}, // two proxies
		{"127.0.0.1:1234", "garbage", "127.0.0.1"},
		{"[::ffff:127.0.0.1]:1", "", "127.0.0.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientIP(r, trusted); got.String() != c.want {
			t.Errorf("peer %s xff %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

func TestWrapRefusesOtherNetworksAndFloods(t *testing.T) {
	t.Parallel()
	allow, _ := ParsePrefixes("192.0.2.0/24")
	refused := map[string]int{}
	h := Wrap(Config{Allow: allow, Limit: NewPerIP(1, 2), OnRefuse: func(r string) { refused[r]++ }},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	do := func(peer string) int {
		r := httptest.NewRequest(http.MethodPost, "/webhook", nil)
		r.RemoteAddr = peer
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if st := do("203.0.113.1:1"); st != http.StatusForbidden {
		t.Fatalf("outside the allow-list: %d", st)
	}
	codes := []int{do("192.0.2.1:1"), do("192.0.2.1:2"), do("192.0.2.1:3")}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("burst of 2 then limited: %v", codes)
	}
	if st := do("192.0.2.2:1"); st != http.StatusOK {
		t.Fatalf("another address limited too: %d", st)
	}
	if refused["network"] != 1 || refused["rate"] != 1 {
		t.Fatalf("refusals %v", refused)
	}
	if _, err := ParsePrefixes("10.0.0.0/33"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	var none *PerIP
	if !none.Allow(netip.MustParseAddr("1.2.3.4")) {
		t.Fatal("nil limiter limits")
	}
}

// TestFailuresBlockAnAddressUntilItsBudgetRefills: burst failures, then the
// address is refused until a token refills; other addresses are not.
func TestFailuresBlockAnAddressUntilItsBudgetRefills(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := NewFailures(1, 3, 0) // one a second, three at once
		bad, other := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
		for i := range 3 {
			if d := f.Blocked(bad); d != 0 {
				t.Fatalf("blocked after %d failures of 3", i)
			}
			f.Fail(bad)
		}
		if d := f.Blocked(bad); d != time.Second {
			t.Fatalf("budget spent: Blocked = %v, want 1s", d)
		}
		if d := f.Blocked(other); d != 0 {
			t.Fatalf("another address blocked: %v", d)
		}
		time.Sleep(time.Second)
		if d := f.Blocked(bad); d != 0 {
			t.Fatalf("still blocked after a token refilled: %v", d)
		}
		f.Fail(bad)
		if d := f.Blocked(bad); d != time.Second {
			t.Fatalf("the refilled token spent: Blocked = %v, want 1s", d)
		}
		var none *Failures
		none.Fail(bad)
		if none.Blocked(bad) != 0 {
			t.Fatal("nil Failures blocks")
		}
	})
}

// TestFailuresRememberABoundedNumberOfAddresses: addresses failing from
// everywhere cannot grow the map past its bound, and refilled ones are
// forgotten.
func TestFailuresRememberABoundedNumberOfAddresses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := NewFailures(1, 2, 100)
		for i := range 10_000 {
			f.Fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		}
		if n := len(f.buckets); n > 100 {
			t.Fatalf("%d addresses remembered, bound 100", n)
		}
		time.Sleep(2 * time.Minute) // every budget whole again
		f.Fail(netip.MustParseAddr("192.0.2.1"))
		if n := len(f.buckets); n != 1 {
			t.Fatalf("%d addresses remembered after they all refilled, want 1", n)
		}
	})
}

func TestWrapRefusesAnAddressThatSpentItsFailures(t *testing.T) {
	t.Parallel()
	f := NewFailures(1.0/60, 2, 0)
	refused := map[string]int{}
	h := Wrap(Config{Failures: f, OnRefuse: func(r string) { refused[r]++ }},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Token") != "right" {
				f.Fail(ClientIP(r, nil))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
	do := func(peer, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/webhook", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Token", token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	codes := []int{do("192.0.2.1:1", "wrong").Code, do("192.0.2.1:1", "wrong").Code, do("192.0.2.1:1", "wrong").Code}
	if codes[0] != 401 || codes[1] != 401 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("two failures then refused: %v", codes)
	}
	w := do("192.0.2.1:1", "right")
	if w.Code != http.StatusTooManyRequests || w.Body.String() != `{"error":"Too many requests"}`+"\n" {
		t.Fatalf("the right token from a blocked address: %d %s", w.Code, w.Body)
	}
	if ra := w.Header().Get("Retry-After"); ra != "60" {
		t.Fatalf("Retry-After %q, want 60 (a token at 1/min)", ra)
	}
	if st := do("192.0.2.2:1", "right").Code; st != http.StatusOK {
		t.Fatalf("another address: %d", st)
	}
	if refused["auth"] != 2 {
		t.Fatalf("refusals %v", refused)
	}
}
