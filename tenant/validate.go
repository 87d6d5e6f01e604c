package tenant

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Lengths the registry insists on. A crm_token is sent by the PBX with every
// webhook to a public endpoint, so it must not be guessable; an HS256 secret
// shorter than the hash is weaker than the algorithm (auth.MinSecretLen is
// the same number).
const (
	MaxIDLen        = 253 // a DNS name's longest
	MinCRMTokenLen  = 16
	MinJWTSecretLen = 32
	// MaxSecrets bounds each secret list: a rotation beyond it drops the
	// value that expires soonest, so repeated rotations cannot grow a tenant.
	MaxSecrets = 4
	// MaxListLen bounds the origin and public key lists.
	MaxListLen = 64
)

// ErrInvalid wraps every validation failure; the message names the field,
// never a secret's value.
var ErrInvalid = errors.New("tenant: invalid")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// ValidID reports whether id can name a tenant: lower case letters, digits,
// dots and hyphens, 1–253 characters, starting and ending with a letter or
// digit (so "." and ".." never reach a URL path as an ID).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' {
			return false
		}
		if !alnum && (i == 0 || i == len(id)-1) {
			return false
		}
	}
	return true
}

// Validate checks t before it is stored. Its errors wrap ErrInvalid, name
// the field, and never repeat a secret or a URL (a URL may hold one).
func (t *Tenant) Validate() error {
	if !ValidID(t.ID) {
		return invalid("id: want 1–%d characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit", MaxIDLen)
	}
	if len(t.CRMTokens) == 0 {
		return invalid("crm_tokens: at least one crm_token is required")
	}
	if err := checkSecrets("crm_tokens", t.CRMTokens, MinCRMTokenLen); err != nil {
		return err
	}
	if err := checkSecrets("jwt_secrets", t.JWTSecrets, MinJWTSecretLen); err != nil {
		return err
	}
	if len(t.JWTPublicKeys) > MaxListLen {
		return invalid("jwt_public_keys: at most %d", MaxListLen)
	}
	for i, k := range t.JWTPublicKeys {
		if _, err := ParsePublicKey(k); err != nil {
			return invalid("jwt_public_keys[%d]: %v", i, err)
		}
	}
	for _, u := range []struct{ name, v string }{
		{"pbx_url", t.PBXURL}, {"jwks_url", t.JWKSURL}, {"contact_url", strings.ReplaceAll(t.ContactURL, "{phone}", "0")},
		{"history_forward_url", t.HistoryForwardURL},
	} {
		if u.v != "" && !httpURL(u.v) {
			return invalid("%s: not an absolute http(s) URL (the value is not shown: it may hold a credential)", u.name)
		}
	}
	if t.ContactURL != "" && !strings.Contains(t.ContactURL, "{phone}") {
		return invalid("contact_url: the template needs {phone}")
	}
	if t.PBXToken != "" && t.PBXURL == "" {
		return invalid("pbx_token: given without pbx_url")
	}
	if len(t.AllowedOrigins) > MaxListLen {
		return invalid("allowed_origins: at most %d", MaxListLen)
	}
	for i, o := range t.AllowedOrigins {
		if !validOrigin(o) {
			return invalid("allowed_origins[%d]: want scheme://host[:port]", i)
		}
	}
	if t.Limits.SessionsPerUser < 0 {
		return invalid("limits.sessions_per_user: negative")
	}
	if r := t.Limits.WebhookRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return invalid("limits.webhook_rate: want a finite non-negative number")
	}
	return nil
}

func checkSecrets(field string, ss []Secret, minLen int) error {
	if len(ss) > MaxSecrets {
		return invalid("%s: at most %d values", field, MaxSecrets)
	}
	for i, s := range ss {
		if utf8.RuneCountInString(s.Value) < minLen {
			return invalid("%s[%d]: shorter than %d characters", field, i, minLen)
		}
		if strings.TrimSpace(s.Value) != s.Value {
			return invalid("%s[%d]: leading or trailing white space", field, i)
		}
	}
	return nil
}

func httpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validOrigin accepts what a browser sends as Origin, scheme://host[:port],
// and "*" or a host with a "*" wildcard as the node's --allowed-origins does.
func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == "" && u.User == nil &&
		strings.ToLower(o) == o
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block holding an RSA or ECDSA key
// (RS256/ES256 widget tokens).
func ParsePublicKey(p string) (any, error) {
	block, rest := pem.Decode([]byte(p))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("want one PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("want a PUBLIC KEY block, not %q", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKIX public key")
	}
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return k, nil
	}
	return nil, errors.New("want an RSA or ECDSA key")
}
