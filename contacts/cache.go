package contacts

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/callpop/callpop/event"
)

// Answer is what a directory said about one phone number: a contact, or
// (Known false) that it does not know the number. Caching the "don't know"
// spares the CRM a request on every call from an unknown number.
type Answer struct {
	Contact event.Contact
	Known   bool
}

// Cache keeps CRM answers for a while. Phone numbers are keys in the
// normalized form (see Normalize). Implementations are safe for concurrent
// use and honour ctx; an error means the cache could not be asked, never
// "not cached": the CRM is then asked instead (Get) or the answer is simply
// not kept (Set).
type Cache interface {
	// Get returns the answer kept for phone; hit is false when there is
	// none, or it has expired.
	Get(ctx context.Context, phone string) (a Answer, hit bool, err error)
	// Set keeps a for phone for ttl, replacing what was kept; a ttl of zero
	// or less keeps nothing (and drops what was kept).
	Set(ctx context.Context, phone string, a Answer, ttl time.Duration) error
}

// DefaultMemoryCacheSize is how many numbers a MemoryCache keeps by default:
// ten thousand numbers are a few hundred call centres' daily callers, in a
// couple of megabytes.
const DefaultMemoryCacheSize = 10_000

// MemoryCacheConfig configures a MemoryCache.
type MemoryCacheConfig struct {
	// Size is the most numbers kept; when full, the least recently used
	// number is dropped. Zero means DefaultMemoryCacheSize.
	Size int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// MemoryCache is a Cache in this process's memory: bounded in size, least
// recently used entries dropped first, each entry with its own TTL. Safe for
// concurrent use; it never blocks beyond its own mutex.
type MemoryCache struct {
	size int
	now  func() time.Time

	mu    sync.Mutex
	items map[string]*list.Element // guarded by mu; values are *memoryItem
	order list.List                // guarded by mu; front is the most recently used
}

type memoryItem struct {
	phone   string
	answer  Answer
	expires time.Time
}

var _ Cache = (*MemoryCache)(nil)

// NewMemoryCache returns an empty MemoryCache.
func NewMemoryCache(cfg MemoryCacheConfig) *MemoryCache {
	if cfg.Size <= 0 {
		cfg.Size = DefaultMemoryCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemoryCache{size: cfg.Size, now: cfg.Now, items: make(map[string]*list.Element)}
}

// Get returns the answer kept for phone. It never fails.
func (m *MemoryCache) Get(_ context.Context, phone string) (Answer, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[phone]
	if !ok {
		return Answer{}, false, nil
	}
	it := el.Value.(*memoryItem)
	if !m.now().Before(it.expires) {
		m.remove(el)
		return Answer{}, false, nil
	}
	m.order.MoveToFront(el)
	return it.answer, true, nil
}

// Set keeps a for phone for ttl, dropping the least recently used number
// when the cache is full. It never fails.
func (m *MemoryCache) Set(_ context.Context, phone string, a Answer, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[phone]; ok {
		if ttl <= 0 {
			m.remove(el)
			return nil
		}
		it := el.Value.(*memoryItem)
		it.answer, it.expires = a, m.now().Add(ttl)
		m.order.MoveToFront(el)
		return nil
	}
	if ttl <= 0 {
		return nil
	}
	for m.order.Len() >= m.size {
		m.remove(m.order.Back())
	}
	m.items[phone] = m.order.PushFront(&memoryItem{phone: phone, answer: a, expires: m.now().Add(ttl)})
	return nil
}

// Len returns how many numbers are kept, expired ones not yet dropped
// included.
func (m *MemoryCache) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

// remove drops el; the caller holds mu.
func (m *MemoryCache) remove(el *list.Element) {
	delete(m.items, el.Value.(*memoryItem).phone)
	m.order.Remove(el)
}
