package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callpop/callpop/tenant"
)

// tidClaim is the claim naming a token's tenant (docs/contract.md "Widget
// session tokens"); absent or empty: the default tenant.
const tidClaim = "tid"

// Tenants verifies widget tokens of many tenants. A token's tid claim
// names its tenant; a token without one is the default tenant's and is
// verified by Default. A tenant's token verifies only with that tenant's
// own keys — HS256 secrets valid now, RS256/ES256 PEM public keys — and
// only while the tenant is enabled, so one tenant's token can never stand
// for another's user.
type Tenants struct {
	Default *JWT
	Dir     tenant.Directory

	parser *jwt.Parser
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]parsedKeys // by tenant ID; one entry per tenant that verified a token; guarded by mu

	jwks *jwks // the tenants' JWKS URLs' key sets
}

// parsedKeys are a tenant's PEM keys, parsed once per version of the tenant.
type parsedKeys struct {
	of  *tenant.Tenant // the version they were parsed from
	rsa []*rsa.PublicKey
	ec  []*ecdsa.PublicKey
}

var _ Verifier = (*Tenants)(nil)

// NewTenants returns a verifier of the default tenant's tokens by def and
// of the tenants' in dir.
func NewTenants(def *JWT, dir tenant.Directory) *Tenants {
	return &Tenants{
		Default: def, Dir: dir,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(DefaultLeeway),
		),
		now:  time.Now,
		keys: map[string]parsedKeys{},
		jwks: newJWKS(),
	}
}

type tenantClaims struct {
	jwt.RegisteredClaims
	TID string `json:"tid,omitempty"`
}

var errUnknownTenant = errors.New("unknown or disabled tenant")

// Verify implements Verifier.
func (v *Tenants) Verify(token string) (Identity, error) {
	var peek tenantClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &peek); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if peek.TID == tenant.DefaultID {
		return v.Default.Verify(token)
	}
	t, ok := v.Dir.Get(peek.TID)
	if !ok || !t.Enabled {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, errUnknownTenant)
	}
	now := v.now()
	var claims tenantClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return v.keysFor(t, tok.Method, kid, now)
	})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if claims.TID != t.ID { // the verified claims are the ones that count
		return Identity{}, fmt.Errorf("%w: tid changed", ErrBadToken)
	}
	if !now.Before(claims.ExpiresAt.Time) { // no leeway on exp (see JWT.Verify)
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, jwt.ErrTokenExpired)
	}
	key, err := subjectKey(claims.Subject)
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: claims.Subject, Key: tenant.Key(t.ID, key), Tenant: t.ID, Expires: claims.ExpiresAt.Time}, nil
}

// keysFor returns t's keys for method only: an HS256 token is checked
// against secrets, never a public key's bytes (the algorithm-confusion
// attack), and an RS256 one against RSA keys only. Public keys come from
// the tenant's PEM keys and its JWKS URL's set (those with kid, when the
// token names one).
func (v *Tenants) keysFor(t *tenant.Tenant, method jwt.SigningMethod, kid string, now time.Time) (jwt.VerificationKeySet, error) {
	var fetched []any
	if t.JWKSURL != "" && method.Alg() != jwt.SigningMethodHS256.Alg() {
		fetched = v.jwks.keys(t.JWKSURL, kid)
	}
	var set jwt.VerificationKeySet
	switch method.Alg() {
	case jwt.SigningMethodHS256.Alg():
		for _, s := range t.JWTSecrets {
			if len(s.Value) >= MinSecretLen && (s.Until.IsZero() || now.Before(s.Until)) {
				set.Keys = append(set.Keys, []byte(s.Value))
			}
		}
	case jwt.SigningMethodRS256.Alg():
		for _, k := range v.parsed(t).rsa {
			set.Keys = append(set.Keys, k)
		}
		for _, k := range fetched {
			if k, ok := k.(*rsa.PublicKey); ok {
				set.Keys = append(set.Keys, k)
			}
		}
	case jwt.SigningMethodES256.Alg():
		for _, k := range v.parsed(t).ec {
			if k.Curve.Params().Name == "P-256" {
				set.Keys = append(set.Keys, k)
			}
		}
		for _, k := range fetched {
			if k, ok := k.(*ecdsa.PublicKey); ok {
				set.Keys = append(set.Keys, k)
			}
		}
	}
	if len(set.Keys) == 0 {
		return set, fmt.Errorf("no %s key for this tenant", method.Alg())
	}
	return set, nil
}

// parsed returns t's PEM keys parsed, from the cache while t is the version
// they were parsed from. Keys that do not parse are skipped (the registry
// validates them when they are set).
func (v *Tenants) parsed(t *tenant.Tenant) parsedKeys {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p, ok := v.keys[t.ID]; ok && p.of == t {
		return p
	}
	p := parsedKeys{of: t}
	for _, pem := range t.JWTPublicKeys {
		if k, err := jwt.ParseRSAPublicKeyFromPEM([]byte(pem)); err == nil {
			p.rsa = append(p.rsa, k)
		} else if k, err := jwt.ParseECPublicKeyFromPEM([]byte(pem)); err == nil {
			p.ec = append(p.ec, k)
		}
	}
	v.keys[t.ID] = p
	return p
}
