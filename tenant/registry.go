package tenant

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry is the registry in memory, as every node's hot paths read it:
// an immutable snapshot behind an atomic pointer. Get is a lock-free map
// look-up; a change builds a new map and swaps it in, so readers never wait
// for writers. Stores (tenant/file, tenant/redis) feed it with what they
// load and tell it of each change they see.
//
// Tenants in the registry are shared and must not be changed in place:
// edit a Clone and Put it through a Store.
type Registry struct {
	snap atomic.Pointer[map[string]*Tenant]

	mu       sync.Mutex // serialises changes, so watchers see them in order
	watchers map[int]WatchFunc
	nextID   int
}

// WatchFunc is told of one change: old is nil for a tenant added, new is
// nil for one removed. It runs on the goroutine that applied the change,
// after readers can see it, one change at a time; it must return quickly
// (hand long work to a goroutine) and must not change the registry.
type WatchFunc func(old, new *Tenant)

// Watcher reports changes to the registry: cmd closes a disabled tenant's
// sockets through it.
type Watcher interface {
	Watch(fn WatchFunc) (stop func())
}

var (
	_ Directory = (*Registry)(nil)
	_ Watcher   = (*Registry)(nil)
)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{watchers: map[int]WatchFunc{}}
	empty := map[string]*Tenant{}
	r.snap.Store(&empty)
	return r
}

// Get returns the tenant with id. It never blocks and does not allocate.
func (r *Registry) Get(id string) (*Tenant, bool) {
	t, ok := (*r.snap.Load())[id]
	return t, ok
}

// Len is the number of tenants.
func (r *Registry) Len() int { return len(*r.snap.Load()) }

// List returns every tenant, ordered by ID.
func (r *Registry) List() []*Tenant {
	m := *r.snap.Load()
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b *Tenant) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Watch calls fn for every change from now on, until stop is called.
func (r *Registry) Watch(fn WatchFunc) (stop func()) {
	r.mu.Lock()
	id := r.nextID
	r.nextID++
	r.watchers[id] = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.watchers, id)
		r.mu.Unlock()
	}
}

// Replace makes ts the whole registry (a store's full load) and reports each
// difference to the watchers. The registry keeps ts's tenants.
func (r *Registry) Replace(ts []*Tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.snap.Load()
	next := make(map[string]*Tenant, len(ts))
	for _, t := range ts {
		next[t.ID] = t
	}
	r.snap.Store(&next)
	for _, t := range ts {
		if o := old[t.ID]; !same(o, t) {
			r.notify(o, t)
		}
	}
	for id, o := range old {
		if _, ok := next[id]; !ok {
			r.notify(o, nil)
		}
	}
}

// Set adds or replaces one tenant (a change a store was told of). A tenant
// equal to the one held changes nothing and tells no watcher.
func (r *Registry) Set(t *Tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.snap.Load()
	o := old[t.ID]
	if same(o, t) {
		return
	}
	next := maps.Clone(old)
	next[t.ID] = t
	r.snap.Store(&next)
	r.notify(o, t)
}

// Remove deletes the tenant with id, if held.
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.snap.Load()
	o, ok := old[id]
	if !ok {
		return
	}
	next := maps.Clone(old)
	delete(next, id)
	r.snap.Store(&next)
	r.notify(o, nil)
}

// notify calls the watchers; guarded by mu.
func (r *Registry) notify(old, new *Tenant) {
	for _, fn := range r.watchers {
		fn(old, new)
	}
}

// same reports whether a and b hold the same settings. Stores decode
// tenants from JSON, so equal tenants are deeply equal.
func same(a, b *Tenant) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || reflect.DeepEqual(a, b)
}
