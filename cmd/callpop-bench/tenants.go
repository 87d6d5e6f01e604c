//go:build linux

package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/callpop/callpop/tenant"
)

// benchTenant is one tenant of a --tenants run: its ID and the secrets the
// tool posts and signs with.
type benchTenant struct {
	id        string
	crmToken  string
	jwtSecret string
}

// tenantID is the ID of the run's tenant j: t<j>.bench.
func tenantID(j int) string { return "t" + strconv.Itoa(j) + ".bench" }

// deriveSecret is HMAC-SHA256(base, label:id), base64url: every tenant gets
// its own secret, and a second load process (or the server's registry file
// written earlier) derives the same ones from --crm-token and --jwt-secret.
func deriveSecret(base, label, id string) string {
	m := hmac.New(sha256.New, []byte(base))
	m.Write([]byte(label + ":" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// benchTenants returns the run's n tenants.
func benchTenants(o *options) []benchTenant {
	ts := make([]benchTenant, o.tenants)
	for j := range ts {
		id := tenantID(j)
		ts[j] = benchTenant{id: id, crmToken: deriveSecret(o.crmToken, "crm_token", id), jwtSecret: deriveSecret(o.jwtSecret, "jwt_secret", id)}
	}
	return ts
}

// usersPerTenant is how many users each tenant has (all of them without
// tenants).
func (o *options) usersPerTenant() int {
	if o.tenants == 0 {
		return o.users
	}
	return o.users / o.tenants
}

// tenantOf returns the tenant index of user i (0 without tenants): users
// are numbered tenant by tenant.
func (o *options) tenantOf(user int) int { return user / o.usersPerTenant() }

// writeTenantsFile writes the registry callpop serve --tenants-file reads:
// the --tenants N tenants, enabled, each with its crm_token, HS256 secret
// and webhook rate. The file holds secrets: mode 0600.
func writeTenantsFile(o *options) error {
	now := time.Now()
	doc := struct {
		Tenants []*tenant.Tenant `json:"tenants"`
	}{}
	for _, bt := range benchTenants(o) {
		t := &tenant.Tenant{ID: bt.id, Enabled: true,
			CRMTokens:  []tenant.Secret{{Value: bt.crmToken}},
			JWTSecrets: []tenant.Secret{{Value: bt.jwtSecret}},
			Limits:     tenant.Limits{WebhookRate: o.tenantRate}}
		if err := t.Prepare(now); err != nil {
			return fmt.Errorf("tenant %s: %w", bt.id, err)
		}
		doc.Tenants = append(doc.Tenants, t)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(o.writeTenants, b, 0o600)
}
