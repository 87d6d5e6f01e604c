package tenant_test

import (
	"testing"

	"github.com/callpop/callpop/tenant"
)

func TestSplitUndoesKey(t *testing.T) {
	for _, c := range []struct{ id, key string }{{"acme.megapbx.ru", "andy"}, {tenant.DefaultID, "andy"}, {"a", "c/1"}} {
		id, rest := tenant.Split(tenant.Key(c.id, c.key))
		if id != c.id || rest != c.key {
			t.Errorf("Split(Key(%q, %q)) = %q, %q", c.id, c.key, id, rest)
		}
	}
}

func TestStaticAnswersWhatWasSet(t *testing.T) {
	d := tenant.NewStatic(&tenant.Tenant{ID: "a", Enabled: true})
	if got, ok := d.Get("a"); !ok || !got.Enabled {
		t.Fatalf("Get(a) = %+v, %v", got, ok)
	}
	d.Set(&tenant.Tenant{ID: "a"})
	if got, _ := d.Get("a"); got.Enabled {
		t.Fatal("Set did not replace the tenant")
	}
	d.Remove("a")
	if _, ok := d.Get("a"); ok {
		t.Fatal("Remove left the tenant")
	}
}
