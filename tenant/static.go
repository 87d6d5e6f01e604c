package tenant

import (
	"strings"
	"sync"
)

// Static is a Directory held in memory: the tenants a test or a fixed
// configuration names. Safe for concurrent use; Set and Remove take effect
// for the next Get.
type Static struct {
	mu sync.RWMutex
	m  map[string]*Tenant // guarded by mu
}

var _ Directory = (*Static)(nil)

// NewStatic returns a Static holding ts.
func NewStatic(ts ...*Tenant) *Static {
	s := &Static{m: make(map[string]*Tenant, len(ts))}
	for _, t := range ts {
		s.m[t.ID] = t
	}
	return s
}

// Get implements Directory. The Tenant returned must not be changed: Set a
// copy instead.
func (s *Static) Get(id string) (*Tenant, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.m[id]
	return t, ok
}

// Set adds t, or replaces the tenant of its ID.
func (s *Static) Set(t *Tenant) {
	s.mu.Lock()
	s.m[t.ID] = t
	s.mu.Unlock()
}

// Remove forgets the tenant id.
func (s *Static) Remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// Split undoes Key: it returns the tenant ID of a scoped key and the key
// within the tenant. A key without "/" is the default tenant's. It is only
// unambiguous for keys whose unscoped part holds no "/" (user keys: logins
// with "/" are refused at the edge).
func Split(key string) (id, rest string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return DefaultID, key
}
