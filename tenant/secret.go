package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"time"
)

// ValidAt reports whether s is accepted at now: a zero Until never expires.
func (s Secret) ValidAt(now time.Time) bool {
	return s.Until.IsZero() || now.Before(s.Until)
}

// CRMTokenOK reports whether token is one of t's crm_tokens valid at now.
// Every value is compared, in constant time over digests of equal length,
// so neither the match's position nor the token's length shows in timing.
func (t *Tenant) CRMTokenOK(token string, now time.Time) bool {
	if token == "" {
		return false
	}
	got := sha256.Sum256([]byte(token))
	ok := 0
	for _, s := range t.CRMTokens {
		want := sha256.Sum256([]byte(s.Value))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 && s.ValidAt(now) {
			ok = 1
		}
	}
	return ok == 1
}

// JWTSecretsAt returns the HS256 secrets valid at now: during a rotation's
// grace both the old and the new one. The newest comes first.
func (t *Tenant) JWTSecretsAt(now time.Time) []string {
	out := make([]string, 0, len(t.JWTSecrets))
	for i := len(t.JWTSecrets) - 1; i >= 0; i-- {
		if s := t.JWTSecrets[i]; s.ValidAt(now) {
			out = append(out, s.Value)
		}
	}
	return out
}

// RotateCRMToken makes value t's current crm_token; the ones still valid
// stay valid until now+grace (a zero grace ends them now).
func (t *Tenant) RotateCRMToken(value string, now time.Time, grace time.Duration) {
	t.CRMTokens = rotate(t.CRMTokens, value, now, grace)
}

// RotateJWTSecret makes value t's current HS256 secret; the ones still
// valid stay valid until now+grace.
func (t *Tenant) RotateJWTSecret(value string, now time.Time, grace time.Duration) {
	t.JWTSecrets = rotate(t.JWTSecrets, value, now, grace)
}

// rotate returns ss with value appended as the current secret: expired
// values dropped, the others ending at now+grace at the latest, and at most
// MaxSecrets kept (the soonest to expire go first).
func rotate(ss []Secret, value string, now time.Time, grace time.Duration) []Secret {
	end := now.Add(grace)
	out := make([]Secret, 0, len(ss)+1)
	for _, s := range ss {
		if !s.ValidAt(now) || grace <= 0 || s.Value == value {
			continue
		}
		if s.Until.IsZero() || s.Until.After(end) {
			s.Until = end
		}
		out = append(out, s)
	}
	// Stable: among equal Untils the older (earlier in the list) goes first.
	slices.SortStableFunc(out, func(a, b Secret) int { return a.Until.Compare(b.Until) })
	if len(out) > MaxSecrets-1 {
		out = out[len(out)-(MaxSecrets-1):]
	}
	return append(out, Secret{Value: value})
}

// GenerateSecret returns 32 random bytes, base64url encoded (43
// characters): long enough for a crm_token and an HS256 secret.
func GenerateSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Fingerprint identifies a secret without showing it: "sha256:" and the
// first 12 hex digits of its SHA-256, the same as
// `printf %s "$SECRET" | sha256sum | cut -c1-12`.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:6])
}
