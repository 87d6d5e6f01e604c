package names_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/names"
)

// fakePBX answers accounts from a list it can be told to fail, and counts
// the calls.
type fakePBX struct {
	mu       sync.Mutex
	accounts []pbx.Account
	err      error
	calls    int
}

func (f *fakePBX) Accounts(context.Context) ([]pbx.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]pbx.Account(nil), f.accounts...), f.err
}

func (f *fakePBX) set(err error, as ...pbx.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts, f.err = as, err
}

func (f *fakePBX) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var mike = pbx.Account{Name: "mike", RealName: "Mike Brown"}

func TestRefreshLoadsNamesByUserKey(t *testing.T) {
	t.Parallel()
	src := &fakePBX{}
	src.set(nil, mike, pbx.Account{Name: "Andy", RealName: "Andy Smith"}, pbx.Account{Name: "nobody"})
	c := names.New(src, names.Config{}, zaptest.NewLogger(t))
	if got := c.RealName("mike"); got != "" {
		t.Fatalf("before the first refresh: %q", got)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for login, want := range map[string]string{"mike": "Mike Brown", "Mike@acme": "Mike Brown", "andy": "Andy Smith",
		"nobody": "", "stranger": ""} {
		if got := c.RealName(login); got != want {
			t.Errorf("RealName(%q) = %q, want %q", login, got, want)
		}
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2 (an account without a real name is left out)", c.Len())
	}
}

func TestFailedRefreshKeepsTheOldNames(t *testing.T) {
	t.Parallel()
	src := &fakePBX{}
	src.set(nil, mike)
	c := names.New(src, names.Config{}, zaptest.NewLogger(t))
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.set(errors.New("pbx down"))
	if err := c.Refresh(context.Background()); err == nil {
		t.Fatal("a failed accounts call refreshed without error")
	}
	if got := c.RealName("mike"); got != "Mike Brown" {
		t.Fatalf("after a failed refresh: %q, want the old name", got)
	}
	src.set(nil, pbx.Account{Name: "mike", RealName: "Michael Brown"})
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.RealName("mike"); got != "Michael Brown" {
		t.Fatalf("after a good refresh: %q", got)
	}
}

func TestNamesAreBounded(t *testing.T) {
	t.Parallel()
	src := &fakePBX{}
	var as []pbx.Account
	for i := range 10 {
		as = append(as, pbx.Account{Name: fmt.Sprintf("u%d", i), RealName: strings.Repeat("x", 1000)})
	}
	src.set(nil, as...)
	c := names.New(src, names.Config{MaxEntries: 4}, zaptest.NewLogger(t))
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 4 {
		t.Fatalf("Len = %d, want the bound 4", c.Len())
	}
	if got := len(c.RealName("u0")); got != names.MaxNameLen {
		t.Fatalf("a 1000-byte name kept as %d bytes, want %d", got, names.MaxNameLen)
	}
}

func TestNilCacheKnowsNoNames(t *testing.T) {
	t.Parallel()
	var c *names.Cache
	if c.RealName("mike") != "" {
		t.Fatal("nil cache answered a name")
	}
}

// Nodes share one map through Redis, on one Redis and on a Redis Cluster.
func TestClusterSharesOneMapAndAsksThePBXOnce(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		testSharedMap(t, redistest.Start(t).Client())
	})
	t.Run("redis-cluster", func(t *testing.T) {
		t.Parallel()
		testSharedMap(t, redistest.StartCluster(t).Client())
	})
}

func testSharedMap(t *testing.T, rdb goredis.UniversalClient) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := &fakePBX{}
	src.set(nil, mike)
	cfg := names.Config{Redis: rdb, Refresh: time.Minute, Now: clock}
	a := names.New(src, cfg, zaptest.NewLogger(t))
	b := names.New(src, cfg, zaptest.NewLogger(t))
	ctx := context.Background()
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.RealName("mike"); got != "Mike Brown" {
		t.Fatalf("second node: %q", got)
	}
	if n := src.count(); n != 1 {
		t.Fatalf("PBX asked %d times for two nodes, want 1", n)
	}
	if ttl := rdb.TTL(ctx, names.Key).Val(); ttl <= time.Minute || ttl > 2*time.Minute {
		t.Fatalf("shared key TTL %v, want about two refresh intervals", ttl)
	}

	// Once the shared map is a refresh interval old, the next node to
	// refresh asks the PBX again and shares what it got.
	src.set(nil, pbx.Account{Name: "mike", RealName: "Michael Brown"})
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := src.count(); n != 2 {
		t.Fatalf("PBX asked %d times after the map went stale, want 2", n)
	}
	if a.RealName("mike") != "Michael Brown" || b.RealName("mike") != "Michael Brown" {
		t.Fatalf("after the stale refresh: a=%q b=%q", a.RealName("mike"), b.RealName("mike"))
	}
}

func TestRunRetriesAFailedRefreshAndReloadsPeriodically(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src := &fakePBX{}
		src.set(errors.New("pbx down"))
		c := names.New(src, names.Config{Refresh: time.Hour}, zaptest.NewLogger(t))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait()
		if c.Len() != 0 || src.count() != 1 {
			t.Fatalf("after a failed first refresh: %d names, %d calls", c.Len(), src.count())
		}
		src.set(nil, mike)
		time.Sleep(5 * time.Second) // the first retry comes within 5 s, not after the hour
		synctest.Wait()
		if c.RealName("mike") != "Mike Brown" {
			t.Fatalf("retry did not load the names (%d calls)", src.count())
		}
		src.set(nil, pbx.Account{Name: "mike", RealName: "Michael Brown"})
		time.Sleep(time.Hour)
		synctest.Wait()
		if c.RealName("mike") != "Michael Brown" {
			t.Fatalf("periodic refresh did not reload: %q", c.RealName("mike"))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}
