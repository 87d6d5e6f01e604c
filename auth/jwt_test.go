package auth_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/callpop/callpop/auth"
)

// testSecret is exactly auth.MinSecretLen bytes.
const testSecret = "0123456789abcdef0123456789abcdef"

func newTestJWT(tb testing.TB) *auth.JWT {
	tb.Helper()
	j, err := auth.NewJWT(testSecret)
	if err != nil {
		tb.Fatalf("NewJWT: %v", err)
	}
	return j
}

// sign builds a token with the jwt library: method, claims and key as given.
func sign(tb testing.TB, m jwt.SigningMethod, claims jwt.MapClaims, key any) string {
	tb.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return tok
}

// handMade builds a token byte by byte: header and claims as JSON, signed
// with HMAC-SHA256 of secret whatever the header says (nil secret: empty
// signature), so no library can refuse to produce it.
func handMade(tb testing.TB, header, claims map[string]any, secret []byte) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	if secret == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestNewJWTRequiresLongSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"EmptySecretIsRefused", "", false},
		{"ShortSecretIsRefused", "short", false},
		{"SecretOneByteShortIsRefused", testSecret[:auth.MinSecretLen-1], false},
		{"SecretOfMinLenIsAccepted", testSecret, true},
		{"LongerSecretIsAccepted", testSecret + testSecret, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j, err := auth.NewJWT(tc.secret)
			if tc.ok && (err != nil || j == nil) {
				t.Errorf("NewJWT(%d bytes) = %v, %v; want a JWT", len(tc.secret), j, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("NewJWT(%d bytes) succeeded, want an error", len(tc.secret))
			}
		})
	}
}

func TestJWTMintVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, user, wantKey string
	}{
		{"PlainLoginIsItsOwnKey", "andy", "andy"},
		{"DomainAndCaseAreDroppedFromKey", "Andy@Acme", "andy"},
		{"UpperCaseLoginIsLowered", "MIKE", "mike"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := newTestJWT(t)
			before := time.Now()
			tok, err := j.Mint(tc.user, time.Hour)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			id, err := j.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.User != tc.user || id.Key != tc.wantKey {
				t.Errorf("Verify = {User %q, Key %q}, want {%q, %q}", id.User, id.Key, tc.user, tc.wantKey)
			}
			// exp has whole-second precision.
			lo, hi := before.Add(time.Hour-time.Second), time.Now().Add(time.Hour+time.Second)
			if id.Expires.Before(lo) || id.Expires.After(hi) {
				t.Errorf("Expires = %v, want about an hour from %v", id.Expires, before)
			}
		})
	}
}

func TestJWTTokenIsHS256WithSubAndExp(t *testing.T) {
	t.Parallel()
	tok, err := newTestJWT(t).Mint("andy", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("parse with the shared secret: %v", err)
	}
	if parsed.Header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", parsed.Header["alg"])
	}
	if claims["sub"] != "andy" {
		t.Errorf("sub = %v, want andy", claims["sub"])
	}
	if _, ok := claims["exp"]; !ok {
		t.Errorf("claims %v lack exp", claims)
	}
}

func TestJWTMintRefusesEmptyUser(t *testing.T) {
	t.Parallel()
	j := newTestJWT(t)
	for _, user := range []string{"", "   ", "@acme"} {
		if tok, err := j.Mint(user, time.Hour); err == nil {
			t.Errorf("Mint(%q) = %q, want an error", user, tok)
		}
	}
}

func TestJWTMintWithPastTTL(t *testing.T) {
	t.Parallel()
	j := newTestJWT(t)
	t.Run("ExpiredBeyondLeewayIsRefused", func(t *testing.T) {
		t.Parallel()
		tok, err := j.Mint("andy", -(auth.DefaultLeeway + time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Verify(tok); !errors.Is(err, auth.ErrBadToken) {
			t.Errorf("Verify(expired) = %v, want ErrBadToken", err)
		}
	})
	// The leeway is for clocks that disagree about nbf; an exp that has
	// passed is passed (CONTRACT: an expired token is refused).
	t.Run("ExpiredWithinLeewayIsRefused", func(t *testing.T) {
		t.Parallel()
		tok, err := j.Mint("andy", -auth.DefaultLeeway/3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Verify(tok); !errors.Is(err, auth.ErrBadToken) {
			t.Errorf("Verify(expired %v ago) = %v, want ErrBadToken", auth.DefaultLeeway/3, err)
		}
	})
}

func TestJWTVerify(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "Andy@Acme", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	secret := []byte(testSecret)
	good := sign(t, jwt.SigningMethodHS256, valid(), secret)

	for _, tc := range []struct {
		name    string
		token   string
		wantKey string // "" means refused
	}{
		{"ValidHS256IsAccepted", good, "andy"},
		{"MinimalClaimsAreAccepted", sign(t, jwt.SigningMethodHS256,
			jwt.MapClaims{"sub": "andy", "exp": now.Add(time.Minute).Unix()}, secret), "andy"},
		{"HandMadeHS256IsAccepted", handMade(t, map[string]any{"alg": "HS256", "typ": "JWT"},
			map[string]any{"sub": "andy", "exp": now.Add(time.Hour).Unix()}, secret), "andy"},
		{"ExpiredBeyondLeewayIsRefused", sign(t, jwt.SigningMethodHS256,
			with("exp", now.Add(-auth.DefaultLeeway-2*time.Minute).Unix()), secret), ""},
		{"ExpiredWithinLeewayIsRefused", sign(t, jwt.SigningMethodHS256,
			with("exp", now.Add(-auth.DefaultLeeway/3).Unix()), secret), ""},
		{"NotBeforeWithinLeewayIsAccepted", sign(t, jwt.SigningMethodHS256,
			with("nbf", now.Add(auth.DefaultLeeway/3).Unix()), secret), "andy"},
		{"NotBeforeInFutureIsRefused", sign(t, jwt.SigningMethodHS256,
			with("nbf", now.Add(auth.DefaultLeeway+5*time.Minute).Unix()), secret), ""},
		{"WrongSecretIsRefused", sign(t, jwt.SigningMethodHS256, valid(), []byte(strings.Repeat("x", 32))), ""},
		{"AlgNoneIsRefused", sign(t, jwt.SigningMethodNone, valid(), jwt.UnsafeAllowNoneSignatureType), ""},
		{"HandMadeAlgNoneIsRefused", handMade(t, map[string]any{"alg": "none", "typ": "JWT"},
			map[string]any(valid()), nil), ""},
		{"HandMadeAlgNoneCapitalisedIsRefused", handMade(t, map[string]any{"alg": "None"},
			map[string]any(valid()), nil), ""},
		{"HS512WithRightSecretIsRefused", sign(t, jwt.SigningMethodHS512, valid(), secret), ""},
		{"HS384WithRightSecretIsRefused", sign(t, jwt.SigningMethodHS384, valid(), secret), ""},
		{"RS256IsRefused", sign(t, jwt.SigningMethodRS256, valid(), rsaKey), ""},
		// Algorithm confusion: an RS256 header over an HMAC signature made
		// with the shared secret.
		{"RS256HeaderWithHMACSignatureIsRefused", handMade(t, map[string]any{"alg": "RS256", "typ": "JWT"},
			map[string]any(valid()), secret), ""},
		{"MissingSubIsRefused", sign(t, jwt.SigningMethodHS256, with("sub", nil), secret), ""},
		{"EmptySubIsRefused", sign(t, jwt.SigningMethodHS256, with("sub", ""), secret), ""},
		{"BlankSubIsRefused", sign(t, jwt.SigningMethodHS256, with("sub", "   "), secret), ""},
		{"DomainOnlySubIsRefused", sign(t, jwt.SigningMethodHS256, with("sub", "@acme"), secret), ""},
		{"MissingExpIsRefused", sign(t, jwt.SigningMethodHS256, with("exp", nil), secret), ""},
		{"StringExpIsRefused", sign(t, jwt.SigningMethodHS256, with("exp", "tomorrow"), secret), ""},
		{"TamperedPayloadIsRefused", tamper(t, good), ""},
		{"TruncatedSignatureIsRefused", good[:len(good)-4], ""},
		{"EmptyTokenIsRefused", "", ""},
		{"GarbageIsRefused", "not.a.jwt", ""},
		{"TwoSegmentsAreRefused", good[:strings.LastIndexByte(good, '.')], ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := newTestJWT(t).Verify(tc.token)
			if tc.wantKey == "" {
				if err == nil {
					t.Fatalf("Verify accepted %+v, want refused", id)
				}
				if !errors.Is(err, auth.ErrBadToken) {
					t.Errorf("Verify error %v does not wrap ErrBadToken", err)
				}
				if id != (auth.Identity{}) {
					t.Errorf("refused token still gave identity %+v", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v, want accepted", err)
			}
			if id.Key != tc.wantKey {
				t.Errorf("Key = %q, want %q", id.Key, tc.wantKey)
			}
		})
	}
}

// tamper swaps the payload of token for one naming another user, keeping the
// signature.
func tamper(tb testing.TB, token string) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token %q has %d parts", token, len(parts))
	}
	payload, err := json.Marshal(map[string]any{"sub": "mike", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		tb.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestRequireUser(t *testing.T) {
	t.Parallel()
	j := newTestJWT(t)
	good, err := j.Mint("Andy@Acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := j.Mint("andy", -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := mustJWT(t, strings.Repeat("z", 32)).Mint("andy", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		header  string // Authorization
		query   string // the token parameter
		wantKey string // "" means 401
	}{
		{"BearerHeaderIsAccepted", "Bearer " + good, "", "andy"},
		{"LowerCaseBearerIsAccepted", "bearer " + good, "", "andy"},
		// A token in the URL lands in access logs: /api takes the header only.
		{"QueryTokenIsRefused", "", good, ""},
		{"HeaderWinsOverQuery", "Bearer " + good, "garbage", "andy"},
		{"MissingTokenIsRefused", "", "", ""},
		{"GarbageHeaderIsRefused", "Bearer garbage", "", ""},
		{"GarbageQueryIsRefused", "", "garbage", ""},
		{"ExpiredTokenIsRefused", "Bearer " + expired, "", ""},
		{"TokenOfOtherSecretIsRefused", "", other, ""},
		{"BasicSchemeIsRefused", "Basic " + good, "", ""},
		{"BareTokenWithoutSchemeIsRefused", good, "", ""},
		{"BadHeaderIsNotRescuedByGoodQuery", "Bearer garbage", good, ""},
		{"NoHeaderIsNotRescuedByGoodQuery", "", good, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got auth.Identity
			var reached bool
			h := j.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached = true
				id, ok := auth.FromContext(r.Context())
				if !ok {
					t.Error("handler reached without an identity in the context")
				}
				got = id
				w.WriteHeader(http.StatusNoContent)
			}))
			target := "/api/calls"
			if tc.query != "" {
				target += "?token=" + tc.query
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			if tc.wantKey != "" {
				if w.Code != http.StatusNoContent || !reached {
					t.Fatalf("status %d (handler reached: %v), want the handler's 204; body %s", w.Code, reached, w.Body)
				}
				if got.Key != tc.wantKey {
					t.Errorf("identity key %q, want %q", got.Key, tc.wantKey)
				}
				return
			}
			if reached {
				t.Fatal("handler reached with a refused token")
			}
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
			if mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type")); mt != "application/json" {
				t.Errorf("Content-Type %q, want application/json", w.Header().Get("Content-Type"))
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "Invalid token" || len(body) != 1 {
				t.Errorf("body %q, want {\"error\":\"Invalid token\"}", w.Body)
			}
		})
	}
}

func mustJWT(tb testing.TB, secret string) *auth.JWT {
	tb.Helper()
	j, err := auth.NewJWT(secret)
	if err != nil {
		tb.Fatal(err)
	}
	return j
}
