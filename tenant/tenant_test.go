package tenant_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/tenant"
)

const (
	crmTok = "crm-token-0123456789"
	jwtSec = "jwt-secret-0123456789abcdefghijklmnopqrstuv"
)

func valid() *tenant.Tenant {
	return &tenant.Tenant{ID: "acme.megapbx.ru", Enabled: true, CRMTokens: []tenant.Secret{{Value: crmTok}}}
}

func ecKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestValidateAcceptsAFullTenant(t *testing.T) {
	t.Parallel()
	tn := valid()
	tn.PBXURL, tn.PBXToken = "https://acme.megapbx.ru/sys/crm_api.wcgp", "pbx-token"
	tn.JWTSecrets = []tenant.Secret{{Value: jwtSec}}
	tn.JWTPublicKeys = []string{ecKeyPEM(t)}
	tn.JWKSURL = "https://crm.example.com/.well-known/jwks.json"
	tn.AllowedOrigins = []string{"https://crm.example.com", "https://*.example.com:8443"}
	tn.ContactURL = "https://crm.example.com/contact?phone={phone}"
	tn.HistoryForwardURL = "http://crm.example.com/history"
	tn.Limits = tenant.Limits{SessionsPerUser: 4, WebhookRate: 50}
	if err := tn.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRefusesEachBadField(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*tenant.Tenant){
		"EmptyID":            func(t *tenant.Tenant) { t.ID = "" },
		"UpperCaseID":        func(t *tenant.Tenant) { t.ID = "Acme.ru" },
		"SlashInID":          func(t *tenant.Tenant) { t.ID = "acme/ru" },
		"DotDotID":           func(t *tenant.Tenant) { t.ID = ".." },
		"LeadingHyphenID":    func(t *tenant.Tenant) { t.ID = "-acme" },
		"TrailingDotID":      func(t *tenant.Tenant) { t.ID = "acme." },
		"LongID":             func(t *tenant.Tenant) { t.ID = strings.Repeat("a", 254) },
		"NoCRMToken":         func(t *tenant.Tenant) { t.CRMTokens = nil },
		"ShortCRMToken":      func(t *tenant.Tenant) { t.CRMTokens = []tenant.Secret{{Value: "short"}} },
		"SpaceInCRMToken":    func(t *tenant.Tenant) { t.CRMTokens = []tenant.Secret{{Value: crmTok + " "}} },
		"TooManyTokens":      func(t *tenant.Tenant) { t.CRMTokens = make([]tenant.Secret, 5) },
		"ShortJWTSecret":     func(t *tenant.Tenant) { t.JWTSecrets = []tenant.Secret{{Value: crmTok}} },
		"BadPEM":             func(t *tenant.Tenant) { t.JWTPublicKeys = []string{"not a key"} },
		"RelativePBXURL":     func(t *tenant.Tenant) { t.PBXURL = "/sys/crm_api.wcgp" },
		"FTPHistoryURL":      func(t *tenant.Tenant) { t.HistoryForwardURL = "ftp://crm.example.com/" },
		"JWKSNoHost":         func(t *tenant.Tenant) { t.JWKSURL = "https:///jwks" },
		"ContactNoPhone":     func(t *tenant.Tenant) { t.ContactURL = "https://crm.example.com/c" },
		"OriginWithPath":     func(t *tenant.Tenant) { t.AllowedOrigins = []string{"https://crm.example.com/app"} },
		"OriginNoScheme":     func(t *tenant.Tenant) { t.AllowedOrigins = []string{"crm.example.com"} },
		"NegativeSessions":   func(t *tenant.Tenant) { t.Limits.SessionsPerUser = -1 },
		"NegativeRate":       func(t *tenant.Tenant) { t.Limits.WebhookRate = -1 },
		"NaNRate":            func(t *tenant.Tenant) { t.Limits.WebhookRate = math.NaN() },
		"PBXTokenWithoutURL": func(t *tenant.Tenant) { t.PBXToken = "pbx-token" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tn := valid()
			edit(tn)
			err := tn.Validate()
			if !errors.Is(err, tenant.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), crmTok) {
				t.Errorf("error repeats the secret: %v", err)
			}
		})
	}
}

func TestCRMTokenOKHonoursUntil(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tn := valid()
	tn.CRMTokens = []tenant.Secret{{Value: "old-token-0123456789", Until: now.Add(time.Hour)}, {Value: crmTok}}
	for _, c := range []struct {
		tok  string
		at   time.Time
		want bool
	}{
		{crmTok, now, true},
		{"old-token-0123456789", now, true},
		{"old-token-0123456789", now.Add(time.Hour), false},
		{crmTok, now.Add(1000 * time.Hour), true},
		{crmTok[:len(crmTok)-1], now, false},
		{"", now, false},
	} {
		if got := tn.CRMTokenOK(c.tok, c.at); got != c.want {
			t.Errorf("CRMTokenOK(%q, +%v) = %v, want %v", c.tok, c.at.Sub(now), got, c.want)
		}
	}
}

// TestRotationAcceptsOldAndNewDuringTheGrace: after a rotation with a
// grace of 24 h both tokens open the door, after it only the new one.
func TestRotationAcceptsOldAndNewDuringTheGrace(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tn := valid()
	tn.JWTSecrets = []tenant.Secret{{Value: jwtSec}}
	const newTok, newSec = "new-crm-token-abcdefgh", "new-jwt-secret-0123456789abcdefghijklmnop"
	tn.RotateCRMToken(newTok, now, 24*time.Hour)
	tn.RotateJWTSecret(newSec, now, 24*time.Hour)
	if err := tn.Validate(); err != nil {
		t.Fatal(err)
	}
	during, after := now.Add(23*time.Hour), now.Add(24*time.Hour)
	if !tn.CRMTokenOK(crmTok, during) || !tn.CRMTokenOK(newTok, during) {
		t.Error("during the grace both crm_tokens must be accepted")
	}
	if tn.CRMTokenOK(crmTok, after) || !tn.CRMTokenOK(newTok, after) {
		t.Error("after the grace only the new crm_token may be accepted")
	}
	if got := tn.JWTSecretsAt(during); len(got) != 2 || got[0] != newSec || got[1] != jwtSec {
		t.Errorf("JWTSecretsAt(during) = %q, want new then old", got)
	}
	if got := tn.JWTSecretsAt(after); len(got) != 1 || got[0] != newSec {
		t.Errorf("JWTSecretsAt(after) = %q, want the new one only", got)
	}
}

func TestRotationWithoutGraceEndsTheOldTokenNow(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tn := valid()
	tn.RotateCRMToken("new-crm-token-abcdefgh", now, 0)
	if tn.CRMTokenOK(crmTok, now) || len(tn.CRMTokens) != 1 {
		t.Errorf("old token still accepted or kept: %d tokens", len(tn.CRMTokens))
	}
}

// TestRepeatedRotationsKeepAtMostMaxSecrets: rotating in a loop cannot grow
// a tenant, and the newest value is always the current one.
func TestRepeatedRotationsKeepAtMostMaxSecrets(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tn := valid()
	var last string
	for i := range 20 {
		last = tenant.GenerateSecret()
		tn.RotateCRMToken(last, now.Add(time.Duration(i)*time.Minute), 24*time.Hour)
	}
	if len(tn.CRMTokens) != tenant.MaxSecrets {
		t.Errorf("%d tokens kept, want %d", len(tn.CRMTokens), tenant.MaxSecrets)
	}
	if cur := tn.CRMTokens[len(tn.CRMTokens)-1]; cur.Value != last || !cur.Until.IsZero() {
		t.Errorf("current token is not the last rotated one without an end")
	}
	if err := tn.Validate(); err != nil {
		t.Error(err)
	}
}

// TestRedactedShowsNoSecret: the printable view carries fingerprints only.
func TestRedactedShowsNoSecret(t *testing.T) {
	t.Parallel()
	tn := valid()
	tn.PBXURL, tn.PBXToken = "https://pbx.example.com/", "pbx-secret-token-xyz"
	tn.JWTSecrets = []tenant.Secret{{Value: jwtSec}}
	b, err := json.Marshal(tn.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{crmTok, jwtSec, "pbx-secret-token-xyz"} {
		if strings.Contains(string(b), s) {
			t.Errorf("view shows %q: %s", s, b)
		}
	}
	if !strings.Contains(string(b), tenant.Fingerprint(crmTok)) {
		t.Errorf("view lacks the crm_token's fingerprint: %s", b)
	}
	// sha256("abc") = ba7816bf8f01cfea…, as sha256sum prints it.
	if got := tenant.Fingerprint("abc"); got != "sha256:ba7816bf8f01" {
		t.Errorf("Fingerprint(abc) = %s", got)
	}
}

func TestCloneSharesNoSlice(t *testing.T) {
	t.Parallel()
	a := valid()
	b := a.Clone()
	b.CRMTokens[0].Value = "changed-token-0123456789"
	if a.CRMTokens[0].Value != crmTok {
		t.Error("editing a clone changed the original")
	}
}

func TestGeneratedSecretsAreLongAndDistinct(t *testing.T) {
	t.Parallel()
	a, b := tenant.GenerateSecret(), tenant.GenerateSecret()
	if a == b || len(a) < tenant.MinJWTSecretLen {
		t.Errorf("GenerateSecret: %d chars, distinct %v", len(a), a != b)
	}
}

// BenchmarkCRMTokenOK is the crm_token check every webhook makes, during a
// rotation (two tokens valid).
func BenchmarkCRMTokenOK(b *testing.B) {
	now := time.Now()
	tn := valid()
	tn.RotateCRMToken("new-crm-token-abcdefgh", now, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if !tn.CRMTokenOK("new-crm-token-abcdefgh", now) {
			b.Fatal("refused")
		}
	}
}
