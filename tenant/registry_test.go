package tenant_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callpop/callpop/tenant"
)

type change struct{ old, new *tenant.Tenant }

func record(r *tenant.Registry) (get func() []change) {
	var mu sync.Mutex
	var seen []change
	r.Watch(func(o, n *tenant.Tenant) {
		mu.Lock()
		seen = append(seen, change{o, n})
		mu.Unlock()
	})
	return func() []change {
		mu.Lock()
		defer mu.Unlock()
		return append([]change(nil), seen...)
	}
}

func named(id string) *tenant.Tenant {
	t := valid()
	t.ID = id
	return t
}

func TestRegistryTellsWatchersOfEachChangeOnce(t *testing.T) {
	t.Parallel()
	r := tenant.NewRegistry()
	seen := record(r)
	a, b := named("a.example"), named("b.example")
	r.Replace([]*tenant.Tenant{a, b})
	if got, ok := r.Get("a.example"); !ok || got != a || r.Len() != 2 {
		t.Fatalf("Get after Replace: %v %v, len %d", got, ok, r.Len())
	}
	r.Replace([]*tenant.Tenant{a.Clone(), b.Clone()}) // same settings: no change
	disabled := a.Clone()
	disabled.Enabled = false
	r.Set(disabled)
	r.Set(disabled.Clone()) // again: no change
	r.Remove("b.example")
	r.Remove("b.example") // gone already
	r.Replace(nil)
	got := seen()
	want := []struct{ old, new string }{
		{"", "a.example"}, {"", "b.example"}, {"a.example", "a.example"}, {"b.example", ""}, {"a.example", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d changes seen, want %d", len(got), len(want))
	}
	idOf := func(t *tenant.Tenant) string {
		if t == nil {
			return ""
		}
		return t.ID
	}
	for i, w := range want {
		if idOf(got[i].old) != w.old || idOf(got[i].new) != w.new {
			t.Errorf("change %d: %s → %s, want %s → %s", i, idOf(got[i].old), idOf(got[i].new), w.old, w.new)
		}
	}
	if !got[2].old.Enabled || got[2].new.Enabled {
		t.Error("the disabling change does not show enabled → disabled")
	}
	if _, ok := r.Get("a.example"); ok || r.Len() != 0 {
		t.Error("tenants left after Replace(nil)")
	}
}

func TestRegistryWatchStopEndsCalls(t *testing.T) {
	t.Parallel()
	r := tenant.NewRegistry()
	n := 0
	stop := r.Watch(func(_, _ *tenant.Tenant) { n++ })
	r.Set(named("a.example"))
	stop()
	r.Set(named("b.example"))
	if n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestRegistryReadersNeverSeeAHalfChange: Get runs while tenants are set
// and removed (run with -race); every tenant read is whole.
func TestRegistryReadersNeverSeeAHalfChange(t *testing.T) {
	t.Parallel()
	r := tenant.NewRegistry()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if tn, ok := r.Get("a.example"); ok && tn.ID != "a.example" {
					t.Error("read a tenant under another ID")
					return
				}
			}
		})
	}
	for i := range 1000 {
		tn := named("a.example")
		tn.Limits.SessionsPerUser = i
		r.Set(tn)
		if i%10 == 0 {
			r.Remove("a.example")
		}
	}
	close(done)
	wg.Wait()
}

func tenants(n int) []*tenant.Tenant {
	ts := make([]*tenant.Tenant, n)
	now := time.Now().UTC()
	for i := range ts {
		ts[i] = &tenant.Tenant{
			ID: fmt.Sprintf("company-%05d.megapbx.ru", i), Enabled: true,
			CRMTokens:      []tenant.Secret{{Value: tenant.GenerateSecret()}},
			JWTSecrets:     []tenant.Secret{{Value: tenant.GenerateSecret()}},
			PBXURL:         fmt.Sprintf("https://company-%05d.megapbx.ru/sys/crm_api.wcgp", i),
			PBXToken:       tenant.GenerateSecret(),
			AllowedOrigins: []string{fmt.Sprintf("https://crm-%05d.example.com", i)},
			ContactURL:     fmt.Sprintf("https://crm-%05d.example.com/contact?phone={phone}", i),
			Created:        now, Updated: now,
		}
	}
	return ts
}

// BenchmarkRegistryGet is the look-up every webhook makes, among 10,000
// tenants (docs/benchmarks.md): IDs in order, and in a random order, which
// defeats the CPU caches as webhooks from many tenants would.
func BenchmarkRegistryGet(b *testing.B) {
	r := tenant.NewRegistry()
	ts := tenants(10_000)
	r.Replace(ts)
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	shuffled := slices.Clone(ids)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, order := range []struct {
		name string
		ids  []string
	}{{"ordered", ids}, {"random", shuffled}} {
		b.Run(order.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := r.Get(order.ids[i%len(order.ids)]); !ok {
					b.Fatal("missing")
				}
				i++
			}
		})
	}
}

// BenchmarkRegistryMemory reports the heap 10,000 typical tenants take in
// the registry (bytes/tenant), and the cost of one change among them.
func BenchmarkRegistryMemory(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := tenant.NewRegistry()
	r.Replace(tenants(10_000))
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTenant := float64(after.HeapAlloc-before.HeapAlloc) / 10_000
	one := named("company-00042.megapbx.ru")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		one = one.Clone()
		one.Limits.SessionsPerUser = i
		r.Set(one) // copy-on-write of the 10,000-entry map
	}
	runtime.KeepAlive(r)
	b.ReportMetric(perTenant, "heap-bytes/tenant") // after the loop: ResetTimer clears metrics
}
