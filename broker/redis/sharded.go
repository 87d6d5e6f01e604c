package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/internal/backoff"
)

// shardCheckInterval: how often a cluster node compares where its sharded
// subscriptions are with the slot map, in case a slot moved without the
// server telling (it normally sends sunsubscribe, and a dead master shows as
// a broken connection at once).
const shardCheckInterval = 10 * time.Second

// shardRetryMax caps the pause between rebuilds while a failover is under
// way (each first asks go-redis to re-read the slot map): small, so
// delivery resumes within about half a second of the slot map naming the
// promoted replica, yet a rebuild every half second costs a dead cluster
// little.
const shardRetryMax = 500 * time.Millisecond

// shardSubs holds a cluster node's sharded subscriptions: one pub/sub
// connection per master, each carrying the channels of the slots that
// master serves (an SSUBSCRIBE is refused by any other node). go-redis
// would reconnect a broken connection by itself, but to the master of one
// channel's slot as its possibly stale slot map says, and a refused
// SSUBSCRIBE would go unnoticed; so a connection that fails is closed, and
// its channels are subscribed again from the slot map once go-redis reloaded
// it. Every confirmation of a channel that was live before is a resync for
// its users, as on a single Redis after a reconnect.
type shardSubs struct {
	b   *Broker
	rdb *goredis.ClusterClient
	ctx context.Context

	// Guarded by b.mu, so SSUBSCRIBE and SUNSUBSCRIBE keep the order of
	// Subscribe and Unsubscribe.
	conns   map[string]*shardConn // by master address
	connOf  map[string]*shardConn // by channel
	orphans map[string]bool       // channels to subscribe again

	kick     chan struct{}
	failures atomic.Int32 // rebuilds since the last confirmation, for the backoff
	wg       sync.WaitGroup
}

type shardConn struct {
	addr   string
	ps     *goredis.PubSub
	chans  map[string]bool
	closed bool
}

func newShardSubs(ctx context.Context, b *Broker, rdb *goredis.ClusterClient) *shardSubs {
	s := &shardSubs{b: b, rdb: rdb, ctx: ctx,
		conns: map[string]*shardConn{}, connOf: map[string]*shardConn{}, orphans: map[string]bool{},
		kick: make(chan struct{}, 1)}
	s.wg.Add(1)
	go s.rebuild()
	return s
}

// owner is the address of the master serving ch's slot, as go-redis's slot
// map says ("" when it cannot say).
func (s *shardSubs) owner(ctx context.Context, ch string) string {
	m, err := s.rdb.MasterForKey(ctx, ch)
	if err != nil {
		return ""
	}
	return m.Options().Addr
}

// subscribe sends SSUBSCRIBE ch on its master's connection. b.mu is held.
func (s *shardSubs) subscribe(ctx context.Context, ch string) {
	if s.ctx.Err() != nil {
		return // closing: close() drops every connection
	}
	addr := s.owner(ctx, ch)
	c := s.conns[addr]
	if c == nil {
		c = &shardConn{addr: addr, ps: s.rdb.SSubscribe(s.ctx), chans: map[string]bool{}}
		s.conns[addr] = c
		s.wg.Add(1)
		go s.read(c)
	}
	c.chans[ch] = true
	s.connOf[ch] = c
	delete(s.orphans, ch)
	// go-redis remembers the channel if the write fails; the read loop
	// then sees the connection fail and has it rebuilt.
	if err := c.ps.SSubscribe(ctx, ch); err != nil {
		s.b.log.Debug("ssubscribe deferred", zap.String("master", addr), zap.Error(err))
	}
}

// unsubscribe sends SUNSUBSCRIBE ch. b.mu is held.
func (s *shardSubs) unsubscribe(ctx context.Context, ch string) {
	delete(s.orphans, ch)
	c := s.connOf[ch]
	if c == nil {
		return
	}
	delete(s.connOf, ch)
	delete(c.chans, ch)
	if len(c.chans) == 0 {
		s.drop(c)
		return
	}
	if err := c.ps.SUnsubscribe(ctx, ch); err != nil {
		s.b.log.Debug("sunsubscribe failed; the connection is gone anyway", zap.Error(err))
	}
}

// drop closes c. b.mu is held.
func (s *shardSubs) drop(c *shardConn) {
	if c.closed {
		return
	}
	c.closed = true
	if s.conns[c.addr] == c {
		delete(s.conns, c.addr)
	}
	_ = c.ps.Close()
}

// orphan marks ch for subscribing again, off c. b.mu is held.
func (s *shardSubs) orphan(c *shardConn, ch string) {
	delete(c.chans, ch)
	if s.connOf[ch] == c {
		delete(s.connOf, ch)
	}
	s.orphans[ch] = true
}

func (s *shardSubs) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// read is one connection's reader; it ends when the connection is closed
// or fails (then its channels are orphaned for rebuild).
func (s *shardSubs) read(c *shardConn) {
	defer s.wg.Done()
	b := s.b
	for {
		msg, err := c.ps.ReceiveTimeout(s.ctx, receiveTimeout)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) {
				_ = c.ps.Ping(s.ctx)
				continue
			}
			b.mu.Lock()
			closed := c.closed
			if !closed {
				for ch := range c.chans {
					s.orphan(c, ch)
				}
				s.drop(c)
			}
			b.mu.Unlock()
			if !closed {
				b.errors.WithLabelValues("receive").Inc()
				b.log.Warn("sharded pub/sub connection failed; subscribing again from the slot map",
					zap.String("master", c.addr), zap.Error(err))
				s.signal()
			}
			return
		}
		switch m := msg.(type) {
		case *goredis.Message:
			b.deliver(m)
		case *goredis.Subscription:
			switch m.Kind {
			case "ssubscribe":
				s.failures.Store(0)
				b.confirmed(m.Channel)
			case "sunsubscribe":
				// Still wanted here: the server dropped it because its
				// slot moved to another master.
				b.mu.Lock()
				moved := c.chans[m.Channel] && !c.closed
				if moved {
					s.orphan(c, m.Channel)
				}
				b.mu.Unlock()
				if moved {
					s.signal()
				}
			}
		}
	}
}

// rebuild subscribes orphaned channels again once go-redis has re-read the
// slot map, and every shardCheckInterval moves channels whose slot changed
// master.
func (s *shardSubs) rebuild() {
	defer s.wg.Done()
	retries := backoff.Policy{Base: 100 * time.Millisecond, Max: shardRetryMax}
	tick := time.NewTicker(shardCheckInterval)
	defer tick.Stop()
	for {
		check := false
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
			check = true
		}
		s.rdb.ReloadState(s.ctx)
		if !backoff.Sleep(s.ctx, retries.Delay(int(s.failures.Add(1)-1))) {
			return
		}
		b := s.b
		b.mu.Lock()
		for ch := range s.orphans {
			if b.subs[ch] == nil {
				delete(s.orphans, ch)
				continue
			}
			s.subscribe(s.ctx, ch)
		}
		if check {
			for ch, c := range s.connOf {
				if o := s.owner(s.ctx, ch); o != "" && o != c.addr {
					s.unsubscribe(s.ctx, ch)
					s.subscribe(s.ctx, ch)
				}
			}
		}
		b.mu.Unlock()
		if check {
			s.failures.Store(0)
		}
	}
}

// close closes every connection and waits for the goroutines.
func (s *shardSubs) close() {
	s.b.mu.Lock()
	for _, c := range s.conns {
		s.drop(c)
	}
	s.b.mu.Unlock()
	s.wg.Wait()
}
