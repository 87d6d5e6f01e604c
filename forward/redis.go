package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/internal/backoff"
)

// Defaults for RedisConfig.
const (
	// DefaultRedisPrefix namespaces the queue's keys. The braces are a Redis
	// Cluster hash tag: every key of the queue lands in one slot, as its
	// scripts need.
	DefaultRedisPrefix = "{callpop:forward}:"
	// DefaultLeaseTTL is how long a node's turn to send lasts without being
	// renewed: how long a crashed node's record waits before another node
	// sends it. It must exceed the Forwarder's Timeout (DefaultTimeout), or a
	// slow send may overlap with the next node's (duplicates, never loss).
	DefaultLeaseTTL = 30 * time.Second
	// maxRedisWait bounds a blocking read, a standby node's lease poll and a
	// held entry's sleep, so a stopping Run returns within about a second.
	maxRedisWait = time.Second
)

// RedisConfig configures a RedisQueue; zero values take the defaults.
type RedisConfig struct {
	// Prefix of every key; "" means DefaultRedisPrefix. Keep a hash tag in it
	// on Redis Cluster.
	Prefix string
	// LeaseTTL: 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// DedupeWindow: 0 means DefaultDedupeWindow.
	DedupeWindow time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// RedisQueue is the Queue of a callpop cluster, shared by every node through
// Redis. Entries live in a stream (<prefix>queue): XADD gives each an id in
// order of arrival that carries its arrival time, and the consumer reads the
// head without removing it (XREAD … 0-0, blocking while the queue is empty),
// deletes it once the CRM took it (XDEL, exact and idempotent), or moves it
// to the dead-letter stream (<prefix>dead) in one script.
//
// Every node runs a consumer, but only the holder of a lease (<prefix>lease,
// SET NX PX, renewed while it reads and waits) sends: one record in flight
// for the whole cluster keeps the CRM's order, and back-off (<prefix>retry,
// the head's attempts and next time) is shared, so a CRM outage is not
// hammered by every node. A node that dies holding the lease loses it after
// LeaseTTL; the next node reads the same head and sends it again — nothing
// acknowledged was unsent, nothing unsent is dropped. Dedupe marks are keys
// <prefix>seen:<key> with the window as TTL, set in the same script as XADD.
//
// A consumer group (XREADGROUP/XACK/XAUTOCLAIM) would let several nodes send
// at once, but out of order, and a head retried for minutes would be claimed
// by another node unless its owner kept touching it; one sender under a
// lease is simpler and enough for one POST per call.
//
// Durability is Redis's: run it with appendonly yes (appendfsync everysec
// loses at most a second of records on a power cut; always loses none).
//
// Each node must build its own RedisQueue (the lease is held per value).
type RedisQueue struct {
	rdb   goredis.UniversalClient
	cfg   RedisConfig
	token string // this consumer's lease value
	wait  time.Duration

	queue, dead, lease, retry, seen string
}

var (
	_ Queue    = (*RedisQueue)(nil)
	_ Releaser = (*RedisQueue)(nil)
)

// NewRedisQueue returns the queue on rdb. It does not contact Redis.
func NewRedisQueue(rdb goredis.UniversalClient, cfg RedisConfig) (*RedisQueue, error) {
	if rdb == nil {
		return nil, errors.New("forward: redis client is nil")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < 3*time.Millisecond {
		return nil, fmt.Errorf("forward: LeaseTTL %v is too short", cfg.LeaseTTL)
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	p := cfg.Prefix
	return &RedisQueue{
		rdb: rdb, cfg: cfg, token: hex.EncodeToString(b[:]), wait: min(cfg.LeaseTTL/3, maxRedisWait),
		queue: p + "queue", dead: p + "dead", lease: p + "lease", retry: p + "retry", seen: p + "seen:",
	}, nil
}

// pushScript: KEYS seen mark, queue; ARGV window ms, key, data. Returns the
// new id, or 0 when the key is marked. The entry goes in before its mark, so
// a script failing half-way can only let a repeat in, never keep a record out.
var pushScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local id = redis.call('XADD', KEYS[2], '*', 'key', ARGV[2], 'data', ARGV[3])
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return id
`)

// leaseScript: KEYS lease; ARGV token, ttl ms. Takes or renews the lease.
var leaseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseScript: KEYS lease; ARGV token.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ackScript: KEYS queue, retry; ARGV id.
var ackScript = goredis.NewScript(`
local n = redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'id') == ARGV[1] then redis.call('DEL', KEYS[2]) end
return n
`)

// retryScript: KEYS retry; ARGV id, at ms. Returns the attempts so far.
var retryScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'id', ARGV[1])
end
redis.call('HSET', KEYS[1], 'at', ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
`)

// buryScript: KEYS queue, dead, retry; ARGV id, key, data, reason. Copies the
// entry to the dead letters, then deletes it; a second call does nothing.
var buryScript = goredis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'key', ARGV[2], 'data', ARGV[3], 'reason', ARGV[4])
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[3], 'id') == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
`)

// Push implements Queue.
func (q *RedisQueue) Push(ctx context.Context, key string, data []byte) (bool, error) {
	res, err := pushScript.Run(ctx, q.rdb, []string{q.seen + key, q.queue},
		q.cfg.DedupeWindow.Milliseconds(), key, data).Result()
	if err != nil {
		return false, fmt.Errorf("forward: redis push: %w", err)
	}
	_, added := res.(string)
	return added, nil
}

// Next implements Queue. It returns the head only while this queue holds
// the lease; otherwise it polls for the lease.
func (q *RedisQueue) Next(ctx context.Context) (Entry, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Entry{}, err
		}
		lead, err := leaseScript.Run(ctx, q.rdb, []string{q.lease}, q.token, q.cfg.LeaseTTL.Milliseconds()).Int()
		if err != nil {
			return Entry{}, fmt.Errorf("forward: redis lease: %w", err)
		}
		if lead != 1 {
			if !backoff.Sleep(ctx, q.wait) {
				return Entry{}, ctx.Err()
			}
			continue
		}
		streams, err := q.rdb.XRead(ctx, &goredis.XReadArgs{
			Streams: []string{q.queue, "0-0"}, Count: 1, Block: q.wait,
		}).Result()
		if errors.Is(err, goredis.Nil) || (err == nil && (len(streams) == 0 || len(streams[0].Messages) == 0)) {
			continue // nothing queued within q.wait: renew the lease and look again
		}
		if err != nil {
			return Entry{}, fmt.Errorf("forward: redis read: %w", err)
		}
		e, ok := redisEntry(streams[0].Messages[0])
		if !ok {
			// Not written by Push: keep it out of the CRM's way, where an
			// operator can look at it.
			if err := q.Bury(ctx, e, "malformed queue entry"); err != nil {
				return Entry{}, err
			}
			continue
		}
		r, err := q.rdb.HMGet(ctx, q.retry, "id", "attempts", "at").Result()
		if err != nil {
			return Entry{}, fmt.Errorf("forward: redis read: %w", err)
		}
		if id, _ := r[0].(string); id == e.ID {
			e.Attempts = atoi(r[1])
			if d := time.UnixMilli(int64(atoi(r[2]))).Sub(q.cfg.Now()); d > 0 {
				if !backoff.Sleep(ctx, min(d, q.wait)) {
					return Entry{}, ctx.Err()
				}
				continue
			}
		}
		return e, nil
	}
}

// Ack implements Queue.
func (q *RedisQueue) Ack(ctx context.Context, e Entry) error {
	if err := ackScript.Run(ctx, q.rdb, []string{q.queue, q.retry}, e.ID).Err(); err != nil {
		return fmt.Errorf("forward: redis ack: %w", err)
	}
	return nil
}

// Retry implements Queue.
func (q *RedisQueue) Retry(ctx context.Context, e Entry, at time.Time) error {
	if err := retryScript.Run(ctx, q.rdb, []string{q.retry}, e.ID, at.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("forward: redis retry: %w", err)
	}
	return nil
}

// Bury implements Queue. The dead letters are the stream <prefix>dead, each
// entry with the queue id, key, data and reason; they are kept until an
// operator deletes them (docs/forwarding.md).
func (q *RedisQueue) Bury(ctx context.Context, e Entry, reason string) error {
	err := buryScript.Run(ctx, q.rdb, []string{q.queue, q.dead, q.retry}, e.ID, e.Key, e.Data, reason).Err()
	if err != nil {
		return fmt.Errorf("forward: redis bury: %w", err)
	}
	return nil
}

// Stats implements Queue.
func (q *RedisQueue) Stats(ctx context.Context) (Stats, error) {
	var n, dead *goredis.IntCmd
	var head *goredis.XMessageSliceCmd
	_, err := q.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		n = p.XLen(ctx, q.queue)
		head = p.XRangeN(ctx, q.queue, "-", "+", 1)
		dead = p.XLen(ctx, q.dead)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("forward: redis stats: %w", err)
	}
	s := Stats{Queued: int(n.Val()), Dead: int(dead.Val())}
	if msgs := head.Val(); len(msgs) > 0 {
		s.Oldest = idTime(msgs[0].ID)
	}
	return s, nil
}

// Release implements Releaser: it gives the lease up if this queue holds it.
func (q *RedisQueue) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, q.rdb, []string{q.lease}, q.token).Err(); err != nil {
		return fmt.Errorf("forward: redis release: %w", err)
	}
	return nil
}

// DeadLetters returns up to limit dead letters, oldest first, as entries
// whose ID is the dead-letter stream's id, with the reason each was buried.
func (q *RedisQueue) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	msgs, err := q.rdb.XRangeN(ctx, q.dead, "-", "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("forward: redis dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		key, _ := m.Values["key"].(string)
		data, _ := m.Values["data"].(string)
		reason, _ := m.Values["reason"].(string)
		qid, _ := m.Values["id"].(string)
		out = append(out, DeadLetter{
			Entry:  Entry{ID: qid, Key: key, Data: []byte(data), Enqueued: idTime(qid)},
			Reason: reason, Buried: idTime(m.ID),
		})
	}
	return out, nil
}

// DeadLetter is a record the CRM rejected for good.
type DeadLetter struct {
	Entry
	Reason string
	Buried time.Time
}

func redisEntry(m goredis.XMessage) (Entry, bool) {
	key, ok1 := m.Values["key"].(string)
	data, ok2 := m.Values["data"].(string)
	return Entry{ID: m.ID, Key: key, Data: []byte(data), Enqueued: idTime(m.ID)}, ok1 && ok2
}

// idTime is the arrival time a stream id ("<ms>-<seq>") carries.
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func atoi(v any) int {
	s, _ := v.(string)
	n, _ := strconv.Atoi(s)
	return n
}
