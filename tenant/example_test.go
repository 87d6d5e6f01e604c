package tenant_test

import (
	"fmt"
	"time"

	"github.com/callpop/callpop/tenant"
)

// A rotation keeps the old crm_token valid for its grace, so the PBX
// cabinet can be switched to the new one without refused webhooks.
func ExampleTenant_RotateCRMToken() {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	t := &tenant.Tenant{ID: "acme.megapbx.ru", Enabled: true,
		CRMTokens: []tenant.Secret{{Value: "old-crm-token-0123456789"}}}
	t.RotateCRMToken("new-crm-token-0123456789", now, 24*time.Hour)

	fmt.Println(t.CRMTokenOK("old-crm-token-0123456789", now.Add(23*time.Hour)))
	fmt.Println(t.CRMTokenOK("old-crm-token-0123456789", now.Add(25*time.Hour)))
	fmt.Println(t.CRMTokenOK("new-crm-token-0123456789", now.Add(25*time.Hour)))
	// Output:
	// true
	// false
	// true
}

// The registry tells watchers of each change; a node closes a disabled
// tenant's sockets from such a watcher.
func ExampleRegistry_Watch() {
	r := tenant.NewRegistry()
	r.Watch(func(old, new *tenant.Tenant) {
		if old != nil && new != nil && old.Enabled && !new.Enabled {
			fmt.Println("disabled:", new.ID)
		}
	})
	t := &tenant.Tenant{ID: "acme.megapbx.ru", Enabled: true}
	r.Set(t)
	off := t.Clone()
	off.Enabled = false
	r.Set(off)
	got, _ := r.Get("acme.megapbx.ru")
	fmt.Println("enabled:", got.Enabled)
	// Output:
	// disabled: acme.megapbx.ru
	// enabled: false
}
