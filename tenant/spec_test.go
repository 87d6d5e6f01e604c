package tenant_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/callpop/callpop/tenant"
)

func TestSpecGeneratesWhatIsMissing(t *testing.T) {
	t.Parallel()
	var s tenant.Spec
	if err := json.Unmarshal([]byte(`{"id":"acme.ru","allowed_origins":["HTTPS://CRM.Example.com"],"sessions_per_user":3}`), &s); err != nil {
		t.Fatal(err)
	}
	tn, gen, err := s.New()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if !tn.Enabled || !tn.CRMTokenOK(gen[tenant.SecretCRMToken], now) || len(tn.JWTSecretsAt(now)) != 1 ||
		tn.JWTSecretsAt(now)[0] != gen[tenant.SecretJWTSecret] {
		t.Errorf("generated secrets not in the tenant: %+v", tn.Redacted())
	}
	if tn.AllowedOrigins[0] != "https://crm.example.com" || tn.Limits.SessionsPerUser != 3 {
		t.Errorf("patch fields not applied: %+v", tn.Redacted())
	}
	// Given secrets, and a JWKS URL instead of an HS256 secret: nothing generated.
	s = tenant.Spec{ID: "b.ru", CRMToken: "crm-token-0123456789"}
	jwks, off := "https://crm.example.com/jwks", false
	s.JWKSURL, s.Enabled = &jwks, &off
	tn, gen, err = s.New()
	if err != nil || len(gen) != 0 || tn.Enabled || len(tn.JWTSecrets) != 0 {
		t.Errorf("New = %+v, %v, %v", tn, gen, err)
	}
	if _, _, err := (&tenant.Spec{ID: "c.ru", CRMToken: "short"}).New(); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("short token: %v", err)
	}
}

func TestRotateRefusesUnknownSecretsAndLongGraces(t *testing.T) {
	t.Parallel()
	tn := valid()
	if _, err := tn.Rotate("pbx_token", "", time.Now(), time.Hour); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("unknown secret: %v", err)
	}
	if _, err := tn.Rotate(tenant.SecretCRMToken, "", time.Now(), 31*24*time.Hour); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("long grace: %v", err)
	}
	gen, err := tn.Rotate(tenant.SecretCRMToken, "", time.Now(), time.Hour)
	if err != nil || !tn.CRMTokenOK(gen, time.Now()) || !tn.CRMTokenOK(crmTok, time.Now()) {
		t.Errorf("rotation: %v", err)
	}
}
