package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/jsonhttp"
)

// DefaultLeeway is the clock skew allowed between the CRM that mints tokens
// and callpop, for nbf only: a token's exp is strict (CONTRACT: an expired
// token is refused), and a 12-hour token loses nothing by it.
const DefaultLeeway = 30 * time.Second

// MinSecretLen is the shortest HS256 secret accepted: 32 bytes, the hash size.
const MinSecretLen = 32

// ErrBadToken is returned for every token that does not verify; the reason
// is wrapped for logs, never shown to the client.
var ErrBadToken = errors.New("auth: invalid token")

// JWT mints and verifies widget session tokens: HS256 only, sub and exp
// required.
type JWT struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewJWT returns a JWT for secret, which must be at least MinSecretLen bytes.
func NewJWT(secret string) (*JWT, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: jwt secret must be at least %d bytes", MinSecretLen)
	}
	return &JWT{
		secret: []byte(secret),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(DefaultLeeway),
		),
		now: time.Now,
	}, nil
}

// Mint returns a token for user valid for ttl.
func (j *JWT) Mint(user string, ttl time.Duration) (string, error) {
	if event.UserKey(user) == "" {
		return "", fmt.Errorf("auth: empty user")
	}
	if strings.Contains(event.UserKey(user), "/") {
		return "", fmt.Errorf("auth: a user holding / cannot have a token")
	}
	now := j.now()
	claims := jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(j.secret)
}

// Verify checks token and returns its identity.
func (j *JWT) Verify(token string) (Identity, error) {
	var claims jwt.RegisteredClaims
	_, err := j.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return j.secret, nil
	})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	// The parser allowed the leeway on exp too: take it back.
	if !j.now().Before(claims.ExpiresAt.Time) {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadToken, jwt.ErrTokenExpired)
	}
	key, err := subjectKey(claims.Subject)
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: claims.Subject, Key: key, Expires: claims.ExpiresAt.Time}, nil
}

// subjectKey is the user key of a token's sub. A sub whose key holds "/"
// is refused: "/" separates a tenant's scope from a key (tenant.Key), so it
// could name another tenant's user.
func subjectKey(sub string) (string, error) {
	key := event.UserKey(sub)
	switch {
	case key == "":
		return "", fmt.Errorf("%w: no sub", ErrBadToken)
	case strings.Contains(key, "/"):
		return "", fmt.Errorf("%w: sub holds /", ErrBadToken)
	}
	return key, nil
}

// RequireUser lets a request through only with a valid token in the
// Authorization header; it answers 401 JSON otherwise. A token in the URL is
// not looked at: URLs end up in access logs (sockets use tickets, see
// RequireSocketUser).
func (j *JWT) RequireUser(next http.Handler) http.Handler { return j.RequireUserOr(nil)(next) }

// RequireUserOr is RequireUser that tells refused, when not nil, of every
// request it refuses.
func (j *JWT) RequireUserOr(refused func(r *http.Request, reason string)) func(http.Handler) http.Handler {
	return RequireUser(j, refused)
}

// RequireUser is JWT.RequireUserOr for any Verifier.
func RequireUser(v Verifier, refused func(r *http.Request, reason string)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := v.Verify(BearerToken(r))
			if err != nil {
				if refused != nil {
					refused(r, "token")
				}
				jsonhttp.Fail(w, jsonhttp.ErrInvalidToken)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		})
	}
}
