package contacts_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
)

var known = contacts.Answer{Contact: acme, Known: true}

func mustGet(tb testing.TB, c contacts.Cache, phone string, want contacts.Answer, wantHit bool) {
	tb.Helper()
	a, hit, err := c.Get(tb.Context(), phone)
	if err != nil || hit != wantHit || a != want {
		tb.Fatalf("Get(%q) = %+v, %v, %v; want %+v, %v", phone, a, hit, err, want, wantHit)
	}
}

func mustSet(tb testing.TB, c contacts.Cache, phone string, a contacts.Answer, ttl time.Duration) {
	tb.Helper()
	if err := c.Set(tb.Context(), phone, a, ttl); err != nil {
		tb.Fatalf("Set(%q): %v", phone, err)
	}
}

func TestMemoryCacheKeepsKnownAndUnknownAnswers(t *testing.T) {
	t.Parallel()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{})
	mustGet(t, c, testPhone, contacts.Answer{}, false)
	mustSet(t, c, testPhone, known, time.Minute)
	mustSet(t, c, "74950000000", contacts.Answer{}, time.Minute)
	mustGet(t, c, testPhone, known, true)
	mustGet(t, c, "74950000000", contacts.Answer{}, true) // cached "unknown" is a hit
}

func TestMemoryCacheEntryExpiresAtItsTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{Now: clk.Now})
	mustSet(t, c, testPhone, known, time.Minute)
	mustSet(t, c, "74950000000", known, time.Hour)
	clk.Advance(time.Minute - time.Nanosecond)
	mustGet(t, c, testPhone, known, true)
	clk.Advance(time.Nanosecond)
	mustGet(t, c, testPhone, contacts.Answer{}, false)
	mustGet(t, c, "74950000000", known, true)
	if c.Len() != 1 {
		t.Errorf("Len() = %d after an expired Get, want 1", c.Len())
	}
}

func TestMemoryCacheSetReplacesAndRenewsTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{Now: clk.Now})
	mustSet(t, c, testPhone, contacts.Answer{}, time.Minute)
	clk.Advance(50 * time.Second)
	mustSet(t, c, testPhone, known, time.Minute)
	clk.Advance(50 * time.Second)
	mustGet(t, c, testPhone, known, true)
}

func TestMemoryCacheZeroTTLKeepsNothingAndDrops(t *testing.T) {
	t.Parallel()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{})
	mustSet(t, c, testPhone, known, 0)
	mustGet(t, c, testPhone, contacts.Answer{}, false)
	mustSet(t, c, testPhone, known, time.Minute)
	mustSet(t, c, testPhone, known, -time.Second)
	mustGet(t, c, testPhone, contacts.Answer{}, false)
	if c.Len() != 0 {
		t.Errorf("Len() = %d, want 0", c.Len())
	}
}

func TestMemoryCacheFullDropsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{Size: 3})
	for _, p := range []string{"1", "2", "3"} {
		mustSet(t, c, p, known, time.Minute)
	}
	mustGet(t, c, "1", known, true) // "2" is now the least recently used
	mustSet(t, c, "4", known, time.Minute)
	if c.Len() != 3 {
		t.Errorf("Len() = %d, want the size 3", c.Len())
	}
	mustGet(t, c, "2", contacts.Answer{}, false)
	for _, p := range []string{"1", "3", "4"} {
		mustGet(t, c, p, known, true)
	}
}

func TestMemoryCacheDefaultSizeIsBounded(t *testing.T) {
	t.Parallel()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{})
	for i := range contacts.DefaultMemoryCacheSize + 100 {
		mustSet(t, c, fmt.Sprint(i), known, time.Minute)
	}
	if c.Len() != contacts.DefaultMemoryCacheSize {
		t.Errorf("Len() = %d, want %d", c.Len(), contacts.DefaultMemoryCacheSize)
	}
	mustGet(t, c, "0", contacts.Answer{}, false)
	mustGet(t, c, fmt.Sprint(contacts.DefaultMemoryCacheSize+99), known, true)
}

func TestMemoryCacheIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	c := contacts.NewMemoryCache(contacts.MemoryCacheConfig{Size: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				phone := fmt.Sprint((g*31 + i) % 100)
				a := contacts.Answer{Contact: event.Contact{Name: phone}, Known: true}
				if i%3 == 0 {
					_ = c.Set(t.Context(), phone, a, time.Minute)
					continue
				}
				if got, hit, _ := c.Get(t.Context(), phone); hit && got != a {
					t.Errorf("Get(%q) = %+v, want %+v", phone, got, a)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Errorf("Len() = %d over the size 50", c.Len())
	}
}
