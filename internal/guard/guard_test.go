package guard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
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
