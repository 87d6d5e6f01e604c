package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
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
