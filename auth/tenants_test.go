package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/tenant"
)

const (
	defaultSecret = "the-default-tenants-secret-0123456789"
	acmeSecret    = "acme-secret-0123456789-0123456789-01"
	acmeOld       = "acme-old-secret-0123456789-012345678"
	otherSecret   = "other-secret-0123456789-0123456789-0"
)

func pemOf(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func signT(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Each tenant's tokens verify with its own keys only, into its own scoped
// identity; a tid naming another tenant, a disabled or unknown one, an
// expired secret, a key of the wrong kind, or a sub holding "/" is refused.
func TestTenantTokensVerifyWithTheirOwnKeysOnly(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	saas := pemOf(t, &rsaKey.PublicKey)
	dir := tenant.NewStatic(
		&tenant.Tenant{ID: "acme.example", Enabled: true,
			JWTSecrets:    []tenant.Secret{{Value: acmeOld, Until: time.Now().Add(-time.Minute)}, {Value: acmeSecret}},
			JWTPublicKeys: []string{saas, pemOf(t, &ecKey.PublicKey)}},
		&tenant.Tenant{ID: "other.example", Enabled: true, JWTSecrets: []tenant.Secret{{Value: otherSecret}}},
		&tenant.Tenant{ID: "off.example", Enabled: false, JWTSecrets: []tenant.Secret{{Value: otherSecret}}},
	)
	def, err := auth.NewJWT(defaultSecret)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewTenants(def, dir)

	ok := []struct {
		name  string
		token string
		want  auth.Identity
	}{
		{"DefaultWithoutTid", signT(t, jwt.SigningMethodHS256, []byte(defaultSecret), jwt.MapClaims{"sub": "Andy@acme"}),
			auth.Identity{User: "Andy@acme", Key: "andy"}},
		{"TenantHS256", signT(t, jwt.SigningMethodHS256, []byte(acmeSecret), jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
			auth.Identity{User: "andy", Key: "acme.example/andy", Tenant: "acme.example"}},
		{"TenantRS256", signT(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
			auth.Identity{User: "andy", Key: "acme.example/andy", Tenant: "acme.example"}},
		{"TenantES256", signT(t, jwt.SigningMethodES256, ecKey, jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
			auth.Identity{User: "andy", Key: "acme.example/andy", Tenant: "acme.example"}},
	}
	for _, c := range ok {
		id, err := v.Verify(c.token)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		id.Expires = time.Time{}
		if id != c.want {
			t.Errorf("%s: identity %+v, want %+v", c.name, id, c.want)
		}
	}

	refused := map[string]string{
		"OtherTenantsSecretNamingAcme": signT(t, jwt.SigningMethodHS256, []byte(otherSecret), jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
		"AcmeSecretNamingOther":        signT(t, jwt.SigningMethodHS256, []byte(acmeSecret), jwt.MapClaims{"sub": "andy", "tid": "other.example"}),
		"DefaultSecretNamingAcme":      signT(t, jwt.SigningMethodHS256, []byte(defaultSecret), jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
		"AcmeSecretWithoutTid":         signT(t, jwt.SigningMethodHS256, []byte(acmeSecret), jwt.MapClaims{"sub": "andy"}),
		"RotatedOutSecret":             signT(t, jwt.SigningMethodHS256, []byte(acmeOld), jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
		"DisabledTenant":               signT(t, jwt.SigningMethodHS256, []byte(otherSecret), jwt.MapClaims{"sub": "andy", "tid": "off.example"}),
		"UnknownTenant":                signT(t, jwt.SigningMethodHS256, []byte(otherSecret), jwt.MapClaims{"sub": "andy", "tid": "nobody.example"}),
		"PublicKeyAsHMACSecret":        signT(t, jwt.SigningMethodHS256, []byte(saas), jwt.MapClaims{"sub": "andy", "tid": "acme.example"}),
		"RS256ForTenantWithoutKeys":    signT(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "andy", "tid": "other.example"}),
		"SlashInSub":                   signT(t, jwt.SigningMethodHS256, []byte(acmeSecret), jwt.MapClaims{"sub": "other.example/andy", "tid": "acme.example"}),
		"SlashInDefaultSub":            signT(t, jwt.SigningMethodHS256, []byte(defaultSecret), jwt.MapClaims{"sub": "acme.example/andy"}),
		"Expired": signT(t, jwt.SigningMethodHS256, []byte(acmeSecret),
			jwt.MapClaims{"sub": "andy", "tid": "acme.example", "exp": time.Now().Add(-time.Second).Unix()}),
		"NoExp": func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "andy", "tid": "acme.example"}).SignedString([]byte(acmeSecret))
			return s
		}(),
	}
	for name, tok := range refused {
		if id, err := v.Verify(tok); !errors.Is(err, auth.ErrBadToken) {
			t.Errorf("%s: verified as %+v (err %v), want ErrBadToken", name, id, err)
		}
	}
}

// A tenant's JWKS URL supplies its RS256/ES256 keys: fetched once and
// cached; a token whose kid the set lacks is refused and fetches again at
// most once per 30 s; a key of one tenant's set never verifies for another.
func TestTenantJWKSKeysAreFetchedOnceAndBounded(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{
			{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
			{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ecKey.X.FillBytes(make([]byte, 32))), "y": b64(ecKey.Y.FillBytes(make([]byte, 32)))},
		}})
	}))
	t.Cleanup(srv.Close)
	dir := tenant.NewStatic(
		&tenant.Tenant{ID: "saas-a.example", Enabled: true, JWKSURL: srv.URL},
		&tenant.Tenant{ID: "plain.example", Enabled: true, JWTSecrets: []tenant.Secret{{Value: otherSecret}}},
	)
	def, _ := auth.NewJWT(defaultSecret)
	v := auth.NewTenants(def, dir)
	withKid := func(m jwt.SigningMethod, key any, kid, tid string) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": "andy", "tid": tid, "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tok := range []string{
		withKid(jwt.SigningMethodRS256, rsaKey, "r1", "saas-a.example"),
		withKid(jwt.SigningMethodES256, ecKey, "e1", "saas-a.example"),
		withKid(jwt.SigningMethodRS256, rsaKey, "", "saas-a.example"),
	} {
		if id, err := v.Verify(tok); err != nil || id.Key != "saas-a.example/andy" {
			t.Fatalf("JWKS-signed token: %+v %v", id, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for three tokens, want 1", n)
	}
	for range 5 {
		if _, err := v.Verify(withKid(jwt.SigningMethodRS256, rsaKey, "unknown", "saas-a.example")); !errors.Is(err, auth.ErrBadToken) {
			t.Fatalf("token with an unknown kid: %v", err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after five unknown kids within 30 s of the first, want still 1", n)
	}
	if _, err := v.Verify(withKid(jwt.SigningMethodRS256, rsaKey, "r1", "plain.example")); !errors.Is(err, auth.ErrBadToken) {
		t.Fatalf("the SaaS key verified for a tenant without it: %v", err)
	}
}
