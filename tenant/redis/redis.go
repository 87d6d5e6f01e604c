// Package redis keeps the tenant registry in Redis, for a cluster: one hash
// holds a field per tenant (its JSON), and a pub/sub channel announces
// each change by tenant ID, so every node applies it within milliseconds.
// A full reload on (re)subscription and every Reload interval is the safety
// net for announcements missed while a node was disconnected.
//
// The key and the channel share the hash tag {tenants}, so on Redis
// Cluster they live on one slot.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/internal/backoff"
	"github.com/callpop/callpop/tenant"
)

const (
	// DefaultKey is the hash of tenants; its channel is DefaultKey+":changed".
	DefaultKey = "callpop:{tenants}"
	// DefaultReload is how often Run reloads the whole hash, in case an
	// announcement was lost.
	DefaultReload = 30 * time.Second
	// receiveTimeout is how long Run waits on the channel before it pings
	// (a dead connection shows) and checks whether a reload is due.
	receiveTimeout = 5 * time.Second
	// maxTxRetries bounds Update's optimistic retries when other writers
	// change the hash under it.
	maxTxRetries = 16
)

// Config tunes a Store; zero values take the defaults.
type Config struct {
	Key    string           // DefaultKey when empty
	Reload time.Duration    // DefaultReload when zero
	Now    func() time.Time // time.Now when nil (tests)
}

// Store is the registry in Redis. Its Get answers from memory.
type Store struct {
	rdb     goredis.UniversalClient
	cfg     Config
	channel string
	log     *zap.Logger
	reg     *tenant.Registry

	// mu serialises reading Redis and applying what was read, so an older
	// read never overwrites a newer one.
	mu sync.Mutex
}

var _ tenant.Manager = (*Store)(nil)

// New returns a store on rdb. It reads nothing yet: Load or Run does.
func New(rdb goredis.UniversalClient, cfg Config, log *zap.Logger) *Store {
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.Reload <= 0 {
		cfg.Reload = DefaultReload
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: rdb, cfg: cfg, channel: cfg.Key + ":changed", log: log.Named("tenants"), reg: tenant.NewRegistry()}
}

// Registry is the in-memory registry the store feeds.
func (s *Store) Registry() *tenant.Registry { return s.reg }

// Get answers from memory (tenant.Registry.Get).
func (s *Store) Get(id string) (*tenant.Tenant, bool) { return s.reg.Get(id) }

// Watch reports every change, made on this node or another.
func (s *Store) Watch(fn tenant.WatchFunc) (stop func()) { return s.reg.Watch(fn) }

// Close does nothing: Run ends with its context, and the client is the
// caller's.
func (s *Store) Close() error { return nil }

// Load reads the whole hash into the registry. An entry that does not
// decode or validate is logged and the registry's own copy of it kept.
func (s *Store) Load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := s.rdb.HGetAll(ctx, s.cfg.Key).Result()
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	ts := make([]*tenant.Tenant, 0, len(raw))
	for id, v := range raw {
		t, err := decode(id, v)
		if err != nil {
			s.log.Error("tenant entry refused; the registry keeps its copy", zap.String("tenant", id), zap.Error(err))
			if old, ok := s.reg.Get(id); ok {
				ts = append(ts, old)
			}
			continue
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 && s.reg.Len() > 0 {
		// A Redis that lost its data (restarted without persistence) looks
		// like this too: say so, the operator may want to restore it.
		s.log.Warn("tenant registry in Redis is empty; every tenant removed", zap.Int("removed", s.reg.Len()))
	}
	s.reg.Replace(ts)
	return nil
}

// refresh applies the stored state of one tenant, as announced.
func (s *Store) refresh(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.rdb.HGet(ctx, s.cfg.Key, id).Result()
	if errors.Is(err, goredis.Nil) {
		s.reg.Remove(id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	t, err := decode(id, v)
	if err != nil {
		return err
	}
	s.reg.Set(t)
	return nil
}

func decode(id, v string) (*tenant.Tenant, error) {
	var t tenant.Tenant
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return nil, fmt.Errorf("tenant %q: %w", id, err)
	}
	if t.ID != id {
		return nil, fmt.Errorf("tenant %q: its id field is %q", id, t.ID)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("tenant %q: %w", id, err)
	}
	return &t, nil
}

// Run follows the change channel until ctx ends: each announcement is
// applied, and the whole hash reloaded on every (re)subscription and every
// Reload interval. It returns nil when ctx ends.
func (s *Store) Run(ctx context.Context) error {
	ps := s.rdb.Subscribe(ctx, s.channel)
	// A blocked receive does not see ctx end; closing the subscription
	// ends it at once.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stop() {
			_ = ps.Close()
		}
	}()
	retries := backoff.Policy{Base: 50 * time.Millisecond, Max: 2 * time.Second}
	failures := 0
	var lastLoad time.Time
	load := func() {
		if err := s.Load(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("tenant registry not reloaded", zap.Error(err))
			}
			return
		}
		lastLoad = time.Now()
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, min(receiveTimeout, s.cfg.Reload))
		if ctx.Err() != nil {
			return nil
		}
		if !lastLoad.IsZero() && time.Since(lastLoad) >= s.cfg.Reload {
			load()
		}
		if err != nil {
			if isTimeout(err) {
				_ = ps.Ping(ctx)
				continue
			}
			d := retries.Delay(failures)
			failures++
			s.log.Warn("tenant channel receive failed; reconnecting", zap.Error(err), zap.Duration("backoff", d))
			if !backoff.Sleep(ctx, d) {
				return nil
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" { // first, or after a reconnect: announcements may have been missed
				load()
			}
		case *goredis.Message:
			if !tenant.ValidID(m.Payload) {
				continue
			}
			if err := s.refresh(ctx, m.Payload); err != nil && ctx.Err() == nil {
				s.log.Warn("tenant change not applied; the next reload will", zap.String("tenant", m.Payload), zap.Error(err))
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// List reads every tenant from Redis.
func (s *Store) List(ctx context.Context) ([]*tenant.Tenant, error) {
	raw, err := s.rdb.HGetAll(ctx, s.cfg.Key).Result()
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	ts := make([]*tenant.Tenant, 0, len(raw))
	for id, v := range raw {
		t, err := decode(id, v)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// Put stores t, replacing a tenant with its ID, and announces it.
func (s *Store) Put(ctx context.Context, t *tenant.Tenant) error {
	t = t.Clone()
	if old, ok := s.reg.Get(t.ID); ok && t.Created.IsZero() {
		t.Created = old.Created
	}
	if err := t.Prepare(s.cfg.Now()); err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.cfg.Key, t.ID, b).Err(); err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	s.announce(ctx, t.ID)
	s.apply(t.ID, b)
	return nil
}

// announce tells the other nodes that tenant id changed. It follows the
// write rather than sharing a MULTI with it: PUBLISH names no key, so on
// Redis Cluster it could not join the hash's slot, and sent after the write
// has been acknowledged it can never overtake it. A lost announcement is
// repaired by the next reload.
func (s *Store) announce(ctx context.Context, id string) {
	if err := s.rdb.Publish(ctx, s.channel, id).Err(); err != nil {
		s.log.Warn("tenant change stored but not announced; other nodes see it at their next reload",
			zap.String("tenant", id), zap.Error(err))
	}
}

// Create stores t if its ID is new, else returns tenant.ErrExists.
func (s *Store) Create(ctx context.Context, t *tenant.Tenant) error {
	t = t.Clone()
	t.Created = time.Time{}
	if err := t.Prepare(s.cfg.Now()); err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	added, err := s.rdb.HSetNX(ctx, s.cfg.Key, t.ID, b).Result()
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	if !added {
		return tenant.ErrExists
	}
	s.announce(ctx, t.ID)
	s.apply(t.ID, b)
	return nil
}

// Update applies edit to a copy of tenant id as Redis holds it, and stores
// the result if nobody changed the hash meanwhile (WATCH); otherwise it
// reads again and retries.
func (s *Store) Update(ctx context.Context, id string, edit func(*tenant.Tenant) error) (*tenant.Tenant, error) {
	var out *tenant.Tenant
	var stored []byte
	txf := func(tx *goredis.Tx) error {
		v, err := tx.HGet(ctx, s.cfg.Key, id).Result()
		if errors.Is(err, goredis.Nil) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("tenants: %w", err)
		}
		t, err := decode(id, v)
		if err != nil {
			return err
		}
		if err := edit(t); err != nil {
			return err
		}
		if t.ID != id {
			return fmt.Errorf("%w: id cannot change", tenant.ErrInvalid)
		}
		if err := t.Prepare(s.cfg.Now()); err != nil {
			return err
		}
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, s.cfg.Key, id, b)
			return nil
		})
		out, stored = t, b
		return err
	}
	for range maxTxRetries {
		err := s.rdb.Watch(ctx, txf, s.cfg.Key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.announce(ctx, id)
		s.apply(id, stored)
		return out, nil
	}
	return nil, errors.New("tenants: too many concurrent changes; try again")
}

// Delete removes tenant id and announces it.
func (s *Store) Delete(ctx context.Context, id string) error {
	n, err := s.rdb.HDel(ctx, s.cfg.Key, id).Result()
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	if n == 0 {
		return tenant.ErrNotFound
	}
	s.announce(ctx, id)
	s.mu.Lock()
	s.reg.Remove(id)
	s.mu.Unlock()
	return nil
}

// apply shows this node's own write at once (the announcement would, a
// moment later). It applies the tenant as decoded from what was stored, so
// the announcement finds it equal and tells the watchers nothing twice.
func (s *Store) apply(id string, stored []byte) {
	t, err := decode(id, string(stored))
	if err != nil { // it was encoded from a validated tenant a moment ago
		s.log.Error("tenant just stored does not decode", zap.String("tenant", id), zap.Error(err))
		return
	}
	s.mu.Lock()
	s.reg.Set(t)
	s.mu.Unlock()
}
