package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// JWKS fetch bounds: a tenant's key set is fetched on first use, kept
// jwksTTL, and fetched again early (for a key id it does not hold) at most
// once per jwksMinRefetch, so tokens naming unknown kids cannot make callpop
// hammer a CRM. A fetch takes at most jwksTimeout and jwksMaxBody bytes, and
// at most jwksMaxKeys keys are kept.
const (
	jwksTTL        = 5 * time.Minute
	jwksMinRefetch = 30 * time.Second
	jwksTimeout    = 3 * time.Second
	jwksMaxBody    = 64 << 10
	jwksMaxKeys    = 32
)

// jwks caches the key sets of JWKS URLs, one entry per URL a tenant names:
// bounded by the tenant directory.
type jwks struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry // by URL; guarded by mu
}

type jwksEntry struct {
	mu      sync.Mutex // one fetch at a time per URL
	keys    []jwk      // guarded by mu
	fetched time.Time  // of keys; zero before the first success
	tried   time.Time  // last fetch attempt
}

// jwk is one usable key of a set.
type jwk struct {
	kid string
	key any // *rsa.PublicKey or *ecdsa.PublicKey (P-256)
}

func newJWKS() *jwks {
	return &jwks{client: &http.Client{Timeout: jwksTimeout}, now: time.Now, entries: map[string]*jwksEntry{}}
}

// keys returns the keys of url for kid ("" for any), fetching the set when
// it is missing, older than jwksTTL, or lacks kid and was not fetched within
// jwksMinRefetch. A failed fetch keeps serving the keys fetched before.
func (j *jwks) keys(url, kid string) []any {
	j.mu.Lock()
	e := j.entries[url]
	if e == nil {
		e = &jwksEntry{}
		j.entries[url] = e
	}
	j.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := j.now()
	stale := e.fetched.IsZero() || now.Sub(e.fetched) > jwksTTL || (kid != "" && !hasKid(e.keys, kid))
	if stale && now.Sub(e.tried) >= jwksMinRefetch {
		e.tried = now
		if ks, err := j.fetch(url); err == nil {
			e.keys, e.fetched = ks, now
		}
	}
	var out []any
	for _, k := range e.keys {
		if kid == "" || k.kid == kid {
			out = append(out, k.key)
		}
	}
	return out
}

func hasKid(ks []jwk, kid string) bool {
	for _, k := range ks {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// fetch reads and parses the key set at url. Keys of other types, curves or
// uses are skipped.
func (j *jwks) fetch(url string) ([]jwk, error) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, errors.New("auth: jwks fetch failed") // the error would repeat the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: jwks answered %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, Use, Crv, N, E, X, Y string
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, jwksMaxBody)).Decode(&set); err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	var out []jwk
	for _, k := range set.Keys {
		if len(out) == jwksMaxKeys {
			break
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch {
		case k.Kty == "RSA":
			n, e := b64int(k.N), b64int(k.E)
			if n == nil || e == nil || !e.IsInt64() || e.Int64() < 3 || n.BitLen() < 2048 {
				continue
			}
			out = append(out, jwk{k.Kid, &rsa.PublicKey{N: n, E: int(e.Int64())}})
		case k.Kty == "EC" && k.Crv == "P-256":
			x, y := b64int(k.X), b64int(k.Y)
			if x == nil || y == nil {
				continue
			}
			pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
			if _, err := pub.ECDH(); err != nil { // not a point on the curve
				continue
			}
			out = append(out, jwk{k.Kid, pub})
		}
	}
	return out, nil
}

func b64int(s string) *big.Int {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}
