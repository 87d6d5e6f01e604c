// Package auth checks who is calling: the PBX by its crm_token, a widget
// session by its JWT, a browser page by its Origin. Identities reach handlers
// through the request context.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// Identity is a verified widget session's user.
type Identity struct {
	User    string    // the token's sub, as the CRM minted it
	Key     string    // routing key: tenant.Key(Tenant, event.UserKey(User))
	Tenant  string    // the token's tid; "" the default tenant
	Expires time.Time // the token's exp
}

// Verifier checks a widget session token: JWT for one secret, Tenants for
// many tenants.
type Verifier interface {
	Verify(token string) (Identity, error)
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity RequireUser put in ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// TokenEqual compares a presented secret with the expected one in constant
// time. Both are hashed first so neither the content nor the length leaks
// through timing.
func TokenEqual(expected, got string) bool {
	a := sha256.Sum256([]byte(expected))
	b := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && expected != ""
}

// BearerToken returns the token of an "Authorization: Bearer" header, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
