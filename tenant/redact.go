package tenant

import (
	"slices"
	"time"
)

// View is a Tenant safe to print, log or answer over the admin API: every
// secret is replaced by its Fingerprint.
type View struct {
	ID                string       `json:"id"`
	Enabled           bool         `json:"enabled"`
	CRMTokens         []SecretView `json:"crm_tokens"`
	PBXURL            string       `json:"pbx_url,omitempty"`
	PBXToken          string       `json:"pbx_token,omitempty"` // a fingerprint
	JWTSecrets        []SecretView `json:"jwt_secrets,omitempty"`
	JWTPublicKeys     []string     `json:"jwt_public_keys,omitempty"` // public: shown
	JWKSURL           string       `json:"jwks_url,omitempty"`
	AllowedOrigins    []string     `json:"allowed_origins,omitempty"`
	ContactURL        string       `json:"contact_url,omitempty"`
	HistoryForwardURL string       `json:"history_forward_url,omitempty"`
	Limits            Limits       `json:"limits"`
	Created           time.Time    `json:"created"`
	Updated           time.Time    `json:"updated"`
}

// SecretView is a Secret shown by its fingerprint.
type SecretView struct {
	Fingerprint string    `json:"fingerprint"`
	Until       time.Time `json:"until,omitzero"`
}

// Redacted returns t's View. URLs are shown as configured: an operator who
// puts a credential in one should use the token fields instead
// (docs/contract.md "Admin API").
func (t *Tenant) Redacted() View {
	return View{
		ID: t.ID, Enabled: t.Enabled,
		CRMTokens: secretViews(t.CRMTokens), PBXURL: t.PBXURL, PBXToken: Fingerprint(t.PBXToken),
		JWTSecrets: secretViews(t.JWTSecrets), JWTPublicKeys: slices.Clone(t.JWTPublicKeys), JWKSURL: t.JWKSURL,
		AllowedOrigins: slices.Clone(t.AllowedOrigins), ContactURL: t.ContactURL,
		HistoryForwardURL: t.HistoryForwardURL, Limits: t.Limits, Created: t.Created, Updated: t.Updated,
	}
}

func secretViews(ss []Secret) []SecretView {
	if len(ss) == 0 {
		return nil
	}
	out := make([]SecretView, len(ss))
	for i, s := range ss {
		out[i] = SecretView{Fingerprint: Fingerprint(s.Value), Until: s.Until}
	}
	return out
}

// Clone returns a deep copy of t: the registry's tenants are shared and
// never changed in place, so an edit starts from a clone.
func (t *Tenant) Clone() *Tenant {
	c := *t
	c.CRMTokens = slices.Clone(t.CRMTokens)
	c.JWTSecrets = slices.Clone(t.JWTSecrets)
	c.JWTPublicKeys = slices.Clone(t.JWTPublicKeys)
	c.AllowedOrigins = slices.Clone(t.AllowedOrigins)
	return &c
}
