// Package tenant is one callpop deployment serving many companies: a tenant
// is one PBX account (its domain, e.g. acme.megapbx.ru) and the CRM it
// serves, with its own secrets, URLs, origins and limits. Every routing key
// (user, call, cache entry, forward queue, metric label) is scoped by the
// tenant's ID, so the same login in two tenants never meets.
//
// The default tenant (ID "") is the single-tenant configuration of earlier
// releases: its keys carry no prefix, so upgrading changes nothing.
package tenant

import (
	"context"
	"errors"
	"time"
)

// DefaultID is the implicit tenant of a single-tenant deployment.
const DefaultID = ""

// Tenant is one PBX account and the CRM it serves. Secrets are kept as
// lists: during a rotation the old value stays valid until its Until.
type Tenant struct {
	ID      string `json:"id"` // the PBX domain, lower case: [a-z0-9.-], 1–253 characters
	Enabled bool   `json:"enabled"`

	CRMTokens []Secret `json:"crm_tokens"` // the crm_token(s) the PBX posts with webhooks
	PBXURL    string   `json:"pbx_url,omitempty"`
	PBXToken  string   `json:"pbx_token,omitempty"`

	// Widget token verification: HS256 secrets, and/or RS256/ES256 public
	// keys (PEM), and/or a JWKS URL, so a SaaS CRM can sign for all its
	// tenants with one private key.
	JWTSecrets    []Secret `json:"jwt_secrets,omitempty"`
	JWTPublicKeys []string `json:"jwt_public_keys,omitempty"`
	JWKSURL       string   `json:"jwks_url,omitempty"`

	AllowedOrigins    []string `json:"allowed_origins,omitempty"`
	ContactURL        string   `json:"contact_url,omitempty"`
	HistoryForwardURL string   `json:"history_forward_url,omitempty"`

	Limits Limits `json:"limits"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Secret is one accepted value of a token or key. A zero Until never
// expires; a rotation sets the old value's Until to the end of its grace.
type Secret struct {
	Value string    `json:"value"`
	Until time.Time `json:"until,omitzero"`
}

// Limits bound what one tenant may use; zero means the deployment default.
type Limits struct {
	SessionsPerUser int     `json:"sessions_per_user,omitempty"`
	WebhookRate     float64 `json:"webhook_rate,omitempty"` // webhooks per second for the whole tenant
}

// Directory answers which tenant an ID names. Lookups are on the webhook and
// socket hot paths: implementations answer from memory.
type Directory interface {
	Get(id string) (*Tenant, bool)
}

// Store is where the registry lives (a file on one node, Redis on a
// cluster). Watch reports changes made by any node.
type Store interface {
	Directory
	List(ctx context.Context) ([]*Tenant, error)
	Put(ctx context.Context, t *Tenant) error
	Delete(ctx context.Context, id string) error
}

// ErrNotFound is returned for an unknown tenant ID.
var ErrNotFound = errors.New("tenant: not found")

// Key scopes a routing key (user key, call id, cache key) by tenant. The
// default tenant's keys are unchanged. "/" cannot occur in a tenant ID, so
// two tenants' keys never collide.
func Key(id, key string) string {
	if id == DefaultID {
		return key
	}
	return id + "/" + key
}
