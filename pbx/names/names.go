// Package names keeps the PBX's login → real name map (the accounts command,
// docs/pbx-api.md), so popups can say "Mike Brown" where the PBX and the
// directory say "mike". Look-ups never wait: they read the last map loaded.
// On a cluster the map is shared through one Redis key, so only the node that
// finds it missing or stale asks the PBX.
package names

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/backoff"
	"github.com/callpop/callpop/pbx"
)

// DefaultRefresh is how often the map is reloaded: 10 min. Employees are
// hired and renamed rarely; a new one shows as a login for at most this long.
const DefaultRefresh = 10 * time.Minute

// DefaultMaxEntries bounds the map: 10,000 employees, far beyond a cloud
// PBX's size, so a broken answer cannot grow memory (or the Redis value)
// without a bound.
const DefaultMaxEntries = 10_000

// MaxNameLen bounds one real name, in bytes; longer ones are cut.
const MaxNameLen = 200

// Key is the Redis key the map is shared under on a cluster.
const Key = "callpop:names"

// firstRetry is the pause after the first failed refresh; it doubles up to
// the refresh interval.
const firstRetry = 5 * time.Second

// Source lists the PBX's employees (pbx.Client).
type Source interface {
	Accounts(ctx context.Context) ([]pbx.Account, error)
}

// Config configures a Cache.
type Config struct {
	// Refresh is how often the map is reloaded. Zero means DefaultRefresh.
	Refresh time.Duration
	// MaxEntries bounds the map. Zero means DefaultMaxEntries.
	MaxEntries int
	// Redis, when set, shares the map between nodes under Key, expiring
	// after two refresh intervals. Nil: each node asks the PBX itself.
	Redis goredis.UniversalClient
	// Key is the Redis key of the shared map; empty means Key (the default
	// tenant's). Each tenant's PBX has its own.
	Key string
	// Now is the clock that decides whether the shared map is stale. Nil
	// means time.Now.
	Now func() time.Time
}

// Cache is the login → real name map. Its methods are safe for concurrent
// use; the zero of a nil *Cache answers every login with "".
type Cache struct {
	src Source
	cfg Config
	log *zap.Logger
	m   atomic.Pointer[map[string]string]
}

var _ event.Names = (*Cache)(nil)

// New returns an empty Cache loading from src; Run fills it.
func New(src Source, cfg Config, log *zap.Logger) *Cache {
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Key == "" {
		cfg.Key = Key
	}
	return &Cache{src: src, cfg: cfg, log: log.Named("names")}
}

// RealName returns the employee's real name for a login (any case, with or
// without "@domain"), or "" when it is not known (yet).
func (c *Cache) RealName(login string) string {
	if c == nil {
		return ""
	}
	m := c.m.Load()
	if m == nil {
		return ""
	}
	return (*m)[event.UserKey(login)]
}

// Len is the number of names known.
func (c *Cache) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// shared is the JSON kept under Key.
type shared struct {
	At    time.Time         `json:"at"`
	Names map[string]string `json:"names"`
}

// Refresh loads the map once: from Redis when another node stored it less
// than a refresh interval ago, else from the PBX (then stored in Redis). On
// error the map already loaded is kept.
func (c *Cache) Refresh(ctx context.Context) error {
	if c.cfg.Redis != nil {
		if m, ok := c.fromRedis(ctx); ok {
			c.m.Store(&m)
			return nil
		}
	}
	as, err := c.src.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("names: %w", err)
	}
	m := make(map[string]string, min(len(as), c.cfg.MaxEntries))
	for _, a := range as {
		if len(m) >= c.cfg.MaxEntries {
			c.log.Warn("more employees than the names map holds; the rest are shown as logins",
				zap.Int("accounts", len(as)), zap.Int("max", c.cfg.MaxEntries))
			break
		}
		c.add(m, a.Name, a.RealName)
	}
	c.m.Store(&m)
	if c.cfg.Redis != nil {
		b, _ := json.Marshal(shared{At: c.cfg.Now(), Names: m}) // strings only: cannot fail
		if err := c.cfg.Redis.Set(ctx, c.cfg.Key, b, 2*c.cfg.Refresh).Err(); err != nil {
			c.log.Warn("names not shared in Redis", zap.Error(err))
		}
	}
	return nil
}

// add puts one employee into m, keyed as webhooks' users are routed.
func (c *Cache) add(m map[string]string, login, name string) {
	key := event.UserKey(login)
	if key == "" || name == "" {
		return
	}
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	m[key] = name
}

// fromRedis returns the shared map when it is there and fresh.
func (c *Cache) fromRedis(ctx context.Context) (map[string]string, bool) {
	b, err := c.cfg.Redis.Get(ctx, c.cfg.Key).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, false
	case err != nil:
		c.log.Warn("shared names not read from Redis; asking the PBX", zap.Error(err))
		return nil, false
	}
	var v shared
	if err := json.Unmarshal(b, &v); err != nil {
		c.log.Warn("shared names unreadable; asking the PBX", zap.Error(err))
		return nil, false
	}
	if c.cfg.Now().Sub(v.At) >= c.cfg.Refresh {
		return nil, false
	}
	m := make(map[string]string, min(len(v.Names), c.cfg.MaxEntries))
	for login, name := range v.Names {
		if len(m) >= c.cfg.MaxEntries {
			break
		}
		c.add(m, login, name)
	}
	return m, true
}

// Run refreshes the map now and every refresh interval until ctx ends; a
// failed refresh keeps the old map and is retried sooner, backing off from
// 5 s up to the refresh interval. It returns nil when ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	retries := backoff.Policy{Base: firstRetry, Max: c.cfg.Refresh}
	failures := 0
	for {
		wait := c.cfg.Refresh
		if err := c.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = retries.Delay(failures) // jittered, so nodes do not retry together
			failures++
			c.log.Warn("names not refreshed; keeping the old ones", zap.Error(err),
				zap.Int("names", c.Len()), zap.Duration("retry_in", wait))
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
