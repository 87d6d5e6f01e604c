package auth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
)

// A key id the set lacks fetches the set again once 30 s passed since the
// last try, and a rotated-in key is then found; a set past its TTL is
// fetched again; a failing URL keeps the keys fetched before.
func TestJWKSRefetchesOnAMissedKidAtMostEvery30s(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	var kid atomic.Value
	kid.Store("k1")
	var fetches atomic.Int32
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256",
			"kid": kid.Load().(string), "x": b64(key.X.FillBytes(make([]byte, 32))), "y": b64(key.Y.FillBytes(make([]byte, 32)))}}})
	}))
	t.Cleanup(srv.Close)
	now := time.Unix(1_800_000_000, 0)
	j := newJWKS()
	j.now = func() time.Time { return now }
	if got := j.keys(srv.URL, "k1"); len(got) != 1 {
		t.Fatalf("k1: %d keys", len(got))
	}
	kid.Store("k2") // the CRM rotated its key
	now = now.Add(10 * time.Second)
	if got := j.keys(srv.URL, "k2"); len(got) != 0 || fetches.Load() != 1 {
		t.Fatalf("k2 10 s after the fetch: %d keys, %d fetches; want none and no new fetch", len(got), fetches.Load())
	}
	now = now.Add(21 * time.Second)
	if got := j.keys(srv.URL, "k2"); len(got) != 1 || fetches.Load() != 2 {
		t.Fatalf("k2 31 s after the fetch: %d keys, %d fetches; want the rotated key from a second fetch", len(got), fetches.Load())
	}
	down.Store(true)
	now = now.Add(jwksTTL + time.Second)
	if got := j.keys(srv.URL, "k2"); len(got) != 1 || fetches.Load() != 3 {
		t.Fatalf("past the TTL with the URL down: %d keys, %d fetches; want the old key kept after a third fetch", len(got), fetches.Load())
	}
}
