// Package redis is the shared broker for a cluster of callpop nodes: call
// state, per-user event logs (streams) and recent calls live in Redis, and
// frames reach every node through Redis pub/sub, one channel per user, to
// which a node subscribes only while it holds that user's sessions.
package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/backoff"
	"github.com/callpop/callpop/tenant"
)

// Defaults for Config.
const (
	// DefaultPrefix namespaces every key and channel.
	DefaultPrefix = "callpop:"
	// DefaultLogTTL: a user's event log expires this long after their last
	// event; resume is promised within it.
	DefaultLogTTL = 24 * time.Hour
	// DefaultRecentTTL keeps a user's recent calls for a month of silence.
	DefaultRecentTTL = 30 * 24 * time.Hour
	// DefaultOutboxTTL keeps a call's outbox on a cluster (see
	// clusterCASScript) as long as a ringing popup is shown without news
	// (event.RingingTTL): a PBX retries an unanswered webhook within
	// minutes, and a ringing call's next event comes within its ring or
	// queue time. Past it the outbox would redo a popup hello no longer
	// shows, and kept the record's 24 h it held over a third of a
	// cluster's Redis memory per call (docs/benchmarks.md "Outbox TTL").
	DefaultOutboxTTL = event.RingingTTL
	// maxTxRetries bounds optimistic-lock retries on one call record; a
	// group call of 50 managers racing settles far sooner.
	maxTxRetries = 100
	// recordCacheSize calls' records are remembered per node: a few minutes
	// of calls on a busy node, a few MB.
	recordCacheSize = 8192
	// receiveTimeout: a pub/sub connection silent this long is pinged, so a
	// dead peer is noticed and the connection replaced.
	receiveTimeout = 15 * time.Second
)

// conflictBackoff spreads writers that raced for one call record: a commit
// takes well under a millisecond, so a few hundred microseconds apart they
// no longer collide.
var conflictBackoff = backoff.Policy{Base: 200 * time.Microsecond, Max: 5 * time.Millisecond}

// Config configures the Redis broker; zero values take the defaults.
type Config struct {
	Prefix      string
	LogSize     int           // 0 = event.DefaultLogSize
	LogTTL      time.Duration // 0 = DefaultLogTTL
	RecentCalls int           // 0 = event.DefaultRecentCalls
	RecentTTL   time.Duration // 0 = DefaultRecentTTL
	RecordTTL   time.Duration // 0 = event.DefaultRecordTTL
	// OutboxTTL: how long a cluster keeps a call's outbox after its last
	// commit, at most RecordTTL. 0 = DefaultOutboxTTL.
	OutboxTTL time.Duration
	Now       func() time.Time
	// Registerer receives the broker's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Broker is one node's connection to the shared Redis.
type Broker struct {
	cfg     Config
	rdb     goredis.UniversalClient
	cluster bool // Redis Cluster: hash-tagged keys, two-step commits, sharded pub/sub
	log     *zap.Logger
	ps      *goredis.PubSub // one Redis or Sentinel: the one pub/sub connection
	shards  *shardSubs      // a cluster: a connection per master

	mu      sync.Mutex
	handler event.Handler
	subs    map[string]*sub // by channel
	pending map[string]int  // SUBSCRIBEs sent and not yet confirmed, by channel

	cancel context.CancelFunc
	done   chan struct{}

	combine combiner     // one batch of this node's updates of a call at a time
	records *recordCache // the last record seen per call; see commitBatch
	batch   *batcher     // pipelines the updates' commands

	loads singleflight.Group // SCRIPT LOADs in flight, by script hash

	errors      *prometheus.CounterVec // by op: update, receive
	resubscribe prometheus.Counter
	conflicts   prometheus.Counter
}

type sub struct {
	user  string
	refs  int
	ready chan struct{} // closed once Redis confirmed the subscription
	live  bool
}

var _ event.Broker = (*Broker)(nil)

// ParseURL returns client options for a redis:// or rediss:// URL. Its
// errors never repeat the URL, which may hold a password.
func ParseURL(rawURL string) (*goredis.Options, error) {
	opt, err := goredis.ParseURL(rawURL)
	var urlErr *url.Error
	switch {
	case errors.As(err, &urlErr): // its text is the whole URL
		return nil, errors.New("redis: malformed URL (reserved characters in a password must be percent-encoded)")
	case err != nil:
		return nil, err // go-redis's errors say "redis: " already
	}
	return opt, nil
}

// New returns a broker on rdb and starts its receiving goroutine. It does
// not wait for Redis to be reachable: a node starts while Redis is down and
// reports not ready until it is back.
func New(rdb goredis.UniversalClient, cfg Config, log *zap.Logger) *Broker {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.LogSize <= 0 {
		cfg.LogSize = event.DefaultLogSize
	}
	if cfg.LogTTL <= 0 {
		cfg.LogTTL = DefaultLogTTL
	}
	if cfg.RecentCalls <= 0 {
		cfg.RecentCalls = event.DefaultRecentCalls
	}
	if cfg.RecentTTL <= 0 {
		cfg.RecentTTL = DefaultRecentTTL
	}
	if cfg.RecordTTL <= 0 {
		cfg.RecordTTL = event.DefaultRecordTTL
	}
	if cfg.OutboxTTL <= 0 {
		cfg.OutboxTTL = DefaultOutboxTTL
	}
	cfg.OutboxTTL = min(cfg.OutboxTTL, cfg.RecordTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg: cfg, rdb: rdb, cluster: IsCluster(rdb), log: log.Named("redis"),
		subs: map[string]*sub{}, pending: map[string]int{},
		cancel: cancel, done: make(chan struct{}),
		records: newRecordCache(recordCacheSize),
	}
	b.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callpop_broker_errors_total", Help: "Redis broker failures, by operation (update, receive).",
	}, []string{"op"})
	b.resubscribe = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callpop_broker_resubscribes_total", Help: "User channels re-subscribed after a pub/sub reconnect (each triggers a catch-up).",
	})
	b.conflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callpop_broker_update_conflicts_total", Help: "Call-record updates retried because another webhook changed the record first.",
	})
	for _, op := range []string{"update", "receive"} {
		b.errors.WithLabelValues(op) // exported at 0, so rate() sees the first failure
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(b.errors, b.resubscribe, b.conflicts)
	}
	b.batch = newBatcher(rdb)
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		b.shards = newShardSubs(ctx, b, cc)
		close(b.done)
	} else {
		b.ps = rdb.Subscribe(ctx)
		go b.receive(ctx)
	}
	return b
}

// key names a key; see clusterKey for the layout on a cluster.
func (b *Broker) key(kind, id string) string {
	if b.cluster {
		return b.clusterKey(kind, id)
	}
	return b.cfg.Prefix + kind + ":" + id
}

// channel is a user's pub/sub channel: a sharded channel on a cluster.
func (b *Broker) channel(user string) string { return b.key("u", user) }

// Ready implements event.Broker.
func (b *Broker) Ready(ctx context.Context) error {
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", event.ErrUnavailable, err)
	}
	return nil
}

// Close stops receiving and closes the pub/sub connection. The client rdb
// belongs to the caller.
func (b *Broker) Close() error {
	b.cancel()
	var err error
	if b.shards != nil {
		b.shards.close()
	} else {
		err = b.ps.Close()
	}
	<-b.done
	b.batch.stop()
	return err
}

// Update implements event.Publisher by compare-and-set on the call's record:
// read it, run fn, and commit the new record with its consequences in one
// script that refuses if another webhook changed the record meanwhile (then
// read again). Concurrent webhooks for one call (a group call's racing
// pushes) are applied one after the other, whichever node receives them;
// on one node they queue on an in-process lock first, so they rarely race in
// Redis at all.
func (b *Broker) Update(ctx context.Context, callID string, fn event.UpdateFunc) error {
	return b.combine.do(ctx, callID, fn, b.commitBatch)
}

// commitBatch applies a batch of one call's updates to its record, in
// order, and commits them at once. The record it starts from is the one this
// node last saw (or none, for a call new to it); the compare-and-set either
// takes it or answers with the current record, from which the batch is
// applied again.
func (b *Broker) commitBatch(callID string, batch []*update) error {
	ctx := context.Background() // the commands are not abandoned half-way; see batcher.do
	key := b.key("call", callID)
	raw, decoded := b.records.take(callID)
	fromRedis := false // raw is what Redis held a moment ago, not this node's memory
	for attempt := 0; attempt < maxTxRetries; attempt++ {
		rec := event.CallState{CallID: callID}
		if decoded != nil {
			rec, decoded = *decoded, nil
		} else if len(raw) > 0 {
			if err := json.Unmarshal(raw, &rec); err != nil {
				b.log.Warn("unreadable call record; starting afresh", zap.String("callid", callID), zap.Error(err))
				rec = event.CallState{CallID: callID}
			}
		}
		var outs []event.Out
		for _, u := range batch {
			outs = append(outs, u.fn(&rec)...)
		}
		next := mustJSON(rec)
		if fromRedis && len(outs) == 0 && bytes.Equal(raw, next) {
			if b.cluster { // a retried webhook finishes a failed second step
				if err := b.flushOutbox(ctx, callID); err != nil {
					b.errors.WithLabelValues("update").Inc()
					return fmt.Errorf("%w: update %s: %w", event.ErrUnavailable, callID, err)
				}
			}
			return nil // repeated webhooks: nothing changed
		}
		// The record is stored even when nothing is sent: a tombstone or an
		// early rating must be there for the call's next webhook.
		var cur []byte
		var ok bool
		var err error
		if b.cluster {
			cur, ok, err = b.commitCluster(ctx, callID, raw, next, b.clusterOps(callID, &rec, outs))
		} else {
			cur, ok, err = b.commit(ctx, key, b.commitArgs(raw, next, callID, &rec, outs))
		}
		if err != nil {
			b.errors.WithLabelValues("update").Inc()
			return fmt.Errorf("%w: update %s: %w", event.ErrUnavailable, callID, err)
		}
		if ok {
			b.records.put(callID, next, &rec)
			return nil
		}
		if fromRedis {
			// Another node changed the record between our read and our
			// commit: retry after a short random pause so racing writers
			// spread out.
			b.conflicts.Inc()
			time.Sleep(conflictBackoff.Delay(attempt))
		}
		raw, fromRedis = cur, true
	}
	return fmt.Errorf("%w: update %s: too much contention", event.ErrUnavailable, callID)
}

// commit runs commitScript in the next batch: ok, or the record Redis holds
// instead of the one expected.
func (b *Broker) commit(ctx context.Context, key string, args []any) (cur []byte, ok bool, err error) {
	v, err := b.runScript(ctx, commitScript, []string{key}, args...)
	if err != nil {
		return nil, false, err
	}
	switch v := v.(type) {
	case int64:
		return nil, v == 1, nil
	case string:
		return []byte(v), false, nil
	}
	return nil, false, fmt.Errorf("commit: unexpected reply %T", v)
}

// runScript runs a script in the next batch by its hash, loading it into
// Redis when Redis does not know it (first use, or after a restart).
func (b *Broker) runScript(ctx context.Context, sc *goredis.Script, keys []string, args ...any) (any, error) {
	run := func() (any, error) {
		cmdArgs := make([]any, 0, 3+len(keys)+len(args))
		cmdArgs = append(cmdArgs, "evalsha", sc.Hash(), len(keys))
		for _, k := range keys {
			cmdArgs = append(cmdArgs, k)
		}
		cmd := goredis.NewCmd(ctx, append(cmdArgs, args...)...)
		_ = b.batch.do(cmd)
		return cmd.Result()
	}
	v, err := run()
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// Every command that finds the script missing at once (a fresh,
		// restarted or promoted Redis: the script cache is not replicated)
		// waits for one load, instead of each loading it on every master
		// (and, on a cluster, reloading the slot map) as Redis comes back.
		_, lerr, _ := b.loads.Do(sc.Hash(), func() (any, error) {
			// Not the first caller's context: the others wait on this load.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scriptLoadTimeout)
			defer cancel()
			return nil, sc.Load(lctx, b.rdb).Err()
		})
		if lerr != nil {
			return nil, lerr
		}
		v, err = run()
	}
	return v, err
}

// commitArgs lays out commitScript's arguments for one update.
func (b *Broker) commitArgs(raw, next []byte, callID string, rec *event.CallState, outs []event.Out) []any {
	args := []any{raw, next, int(b.cfg.RecordTTL.Seconds())}
	for _, ch := range rec.Active(outs, b.cfg.Now()) {
		k := b.key("active", ch.UserKey)
		if ch.Leg == nil {
			args = append(args, "d", k, callID)
		} else {
			args = append(args, "a", k, callID, mustJSON(ch.Leg.Last), int(event.TalkingTTL.Seconds()))
		}
	}
	for _, o := range outs {
		if o.Record != nil {
			args = append(args, "k", b.key("recent", o.UserKey), b.key("recent-idx", o.UserKey), o.Record.CallID,
				mustJSON(o.Record), o.Record.Start.Unix(), b.cfg.RecentCalls, int(b.cfg.RecentTTL.Seconds()))
		}
		if o.Payload != nil {
			args = append(args, "e", b.key("log", o.UserKey), o.Payload, b.channel(o.UserKey),
				b.cfg.LogSize, int(b.cfg.LogTTL.Seconds()))
		}
	}
	return args
}

// Snapshot implements event.Subscriber, reading active calls and the log in
// one script so they agree; it shares the update pipelines, so a reconnect
// storm costs Redis a few large writes rather than one round trip per session.
func (b *Broker) Snapshot(ctx context.Context, user string, since event.ID) (event.Snapshot, error) {
	snap := event.Snapshot{Active: []event.CallFrame{}}
	activeKey := b.key("active", user)
	sinceArg := ""
	if !since.IsZero() {
		sinceArg = since.String()
	}
	reply, err := b.runScript(ctx, snapshotScript, []string{activeKey, b.key("log", user)}, sinceArg, b.cfg.LogSize)
	if err != nil {
		return snap, fmt.Errorf("%w: snapshot: %w", event.ErrUnavailable, err)
	}
	parts, _ := reply.([]any)
	if len(parts) < 2 {
		return snap, fmt.Errorf("%w: snapshot: unexpected reply", event.ErrUnavailable)
	}
	now := b.cfg.Now()
	var stale []string
	flat, _ := parts[0].([]any)
	for i := 0; i+1 < len(flat); i += 2 {
		callID, _ := flat[i].(string)
		raw, _ := flat[i+1].(string)
		var f event.CallFrame
		if json.Unmarshal([]byte(raw), &f) != nil || f.Stale(now) {
			stale = append(stale, callID)
			continue
		}
		snap.Active = append(snap.Active, f)
	}
	event.SortActive(snap.Active)
	if len(stale) > 0 {
		b.rdb.HDel(ctx, activeKey, stale...) // best effort: the next read filters them again
	}
	if newest := streamEntries(parts[1]); len(newest) > 0 {
		snap.Last, _ = event.ParseID(newest[0].ID)
	}
	if len(parts) == 4 && len(streamEntries(parts[2])) > 0 {
		snap.Recovered = true
		for _, x := range streamEntries(parts[3]) {
			if m, ok := b.message(user, x); ok {
				snap.Missed = append(snap.Missed, m)
			}
		}
	}
	return snap, nil
}

// streamEntries reads an XRANGE reply returned through a script.
func streamEntries(v any) []goredis.XMessage {
	list, _ := v.([]any)
	out := make([]goredis.XMessage, 0, len(list))
	for _, e := range list {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		x := goredis.XMessage{ID: id, Values: map[string]any{}}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			x.Values[k] = fields[i+1]
		}
		out = append(out, x)
	}
	return out
}

func (b *Broker) message(user string, x goredis.XMessage) (event.Message, bool) {
	id, ok := event.ParseID(x.ID)
	f, _ := x.Values["f"].(string)
	if !ok || f == "" {
		return event.Message{}, false
	}
	return event.Message{UserKey: user, ID: id, Data: event.WithID([]byte(f), x.ID)}, true
}

// RecentCalls implements event.CallLog.
func (b *Broker) RecentCalls(ctx context.Context, user string, limit int) ([]event.Record, error) {
	recs := []event.Record{}
	ids, err := b.rdb.ZRevRange(ctx, b.key("recent-idx", user), 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		if err != nil {
			err = fmt.Errorf("%w: recent calls: %w", event.ErrUnavailable, err)
		}
		return recs, err
	}
	vals, err := b.rdb.HMGet(ctx, b.key("recent", user), ids...).Result()
	if err != nil {
		return recs, fmt.Errorf("%w: recent calls: %w", event.ErrUnavailable, err)
	}
	for _, v := range vals {
		s, _ := v.(string)
		var r event.Record
		if json.Unmarshal([]byte(s), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// MarkSeen implements event.CallLog in one markSeenScript: the membership
// check, the marks and the frames are one atomic step.
func (b *Broker) MarkSeen(ctx context.Context, user string, callIDs []string) (int, error) {
	if len(callIDs) == 0 {
		return 0, nil
	}
	// A tenant's calls are stored under scoped ids (event.CallState.Scope),
	// and remember the user by their unscoped key.
	tid, local := tenant.Split(user)
	if b.cluster {
		n, err := b.markSeenCluster(ctx, user, tid, local, callIDs)
		if err != nil {
			b.errors.WithLabelValues("update").Inc()
			return 0, fmt.Errorf("%w: mark seen: %w", event.ErrUnavailable, err)
		}
		return n, nil
	}
	args := make([]any, 0, 5+2*len(callIDs))
	args = append(args, b.channel(user), b.cfg.LogSize, int(b.cfg.LogTTL.Seconds()), b.key("call", tenant.Key(tid, "")), local)
	for _, id := range callIDs {
		args = append(args, id, event.Encode(event.SeenFrame{Type: event.FrameSeen, CallID: id}))
	}
	keys := []string{b.key("recent", user), b.key("recent-idx", user), b.key("log", user)}
	v, err := b.runScript(ctx, markSeenScript, keys, args...)
	if err != nil {
		b.errors.WithLabelValues("update").Inc()
		return 0, fmt.Errorf("%w: mark seen: %w", event.ErrUnavailable, err)
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%w: mark seen: unexpected reply %T", event.ErrUnavailable, v)
	}
	return int(n), nil
}

// Register implements event.Subscriber.
func (b *Broker) Register(h event.Handler) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

// Subscribe implements event.Subscriber. The first Subscribe for a user
// sends SUBSCRIBE; every caller waits until Redis confirmed it.
func (b *Broker) Subscribe(ctx context.Context, user string) error {
	ch := b.channel(user)
	b.mu.Lock()
	s := b.subs[ch]
	if s == nil {
		s = &sub{user: user, ready: make(chan struct{})}
		b.subs[ch] = s
		b.pending[ch]++
		// The SUBSCRIBE is written under b.mu so the order of SUBSCRIBE and
		// UNSUBSCRIBE on the wire is the order of these calls. go-redis
		// remembers the channel even if the write fails, and subscribes
		// again on reconnect.
		if b.shards != nil {
			b.shards.subscribe(ctx, ch)
		} else if err := b.ps.Subscribe(ctx, ch); err != nil {
			b.log.Debug("subscribe deferred to reconnect", zap.Error(err))
		}
	}
	s.refs++
	ready := s.ready
	b.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		_ = b.Unsubscribe(context.WithoutCancel(ctx), user)
		return fmt.Errorf("%w: subscribe: %w", event.ErrUnavailable, ctx.Err())
	}
}

// Unsubscribe implements event.Subscriber.
func (b *Broker) Unsubscribe(ctx context.Context, user string) error {
	ch := b.channel(user)
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subs[ch]
	if s == nil {
		return nil
	}
	if s.refs--; s.refs > 0 {
		return nil
	}
	delete(b.subs, ch)
	if b.shards != nil {
		b.shards.unsubscribe(ctx, ch)
	} else if err := b.ps.Unsubscribe(ctx, ch); err != nil {
		b.log.Debug("unsubscribe failed; the connection is gone anyway", zap.Error(err))
	}
	return nil
}

// scriptLoadTimeout bounds one SCRIPT LOAD that many commands may wait on.
const scriptLoadTimeout = 5 * time.Second

// receive reads the pub/sub connection until Close. go-redis reconnects and
// resubscribes by itself after an error; this loop only has to keep asking.
func (b *Broker) receive(ctx context.Context) {
	defer close(b.done)
	retries := backoff.Policy{Base: 50 * time.Millisecond, Max: 2 * time.Second}
	failures := 0
	for {
		msg, err := b.ps.ReceiveTimeout(ctx, receiveTimeout)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) {
				_ = b.ps.Ping(ctx)
				continue
			}
			b.errors.WithLabelValues("receive").Inc()
			d := retries.Delay(failures)
			failures++
			b.log.Warn("pub/sub receive failed; reconnecting", zap.Error(err), zap.Duration("backoff", d))
			if !backoff.Sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *goredis.Message:
			b.deliver(m)
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.confirmed(m.Channel)
			}
		}
	}
}

// confirmed handles Redis's answer to a SUBSCRIBE: ours (ready the waiting
// subscribers) or go-redis's own after a reconnect (tell the hub to resync,
// since frames published while the connection was down never reached us).
func (b *Broker) confirmed(ch string) {
	b.mu.Lock()
	if b.pending[ch] > 0 {
		if b.pending[ch]--; b.pending[ch] > 0 {
			b.mu.Unlock()
			return // an older SUBSCRIBE's answer; ours is still on its way
		}
		delete(b.pending, ch)
	}
	s := b.subs[ch]
	var resync *sub
	switch {
	case s == nil:
	case !s.live:
		s.live = true
		close(s.ready)
	default:
		resync = s
	}
	h := b.handler
	b.mu.Unlock()
	if resync != nil {
		b.resubscribe.Inc()
	}
	if resync != nil && h != nil {
		b.log.Info("resubscribed after reconnect", zap.String("user", resync.user))
		h(event.Message{UserKey: resync.user, Resync: true})
	}
}

func (b *Broker) deliver(m *goredis.Message) {
	b.mu.Lock()
	h, s := b.handler, b.subs[m.Channel]
	b.mu.Unlock()
	if s == nil {
		// Unsubscribed while this was on its way: Redis handles our
		// UNSUBSCRIBE after messages already queued on the connection, and
		// after Unsubscribe returns no frame may reach the hub.
		return
	}
	var user string
	var ok bool
	if b.cluster {
		user, ok = s.user, true // the channel's name may hold a digest of it
	} else {
		user, ok = strings.CutPrefix(m.Channel, b.cfg.Prefix+"u:")
	}
	idStr, data, ok2 := bytes.Cut([]byte(m.Payload), []byte{'\n'})
	id, ok3 := event.ParseID(string(idStr))
	if !ok || !ok2 || !ok3 {
		b.log.Warn("unreadable message", zap.String("channel", m.Channel))
		return
	}
	if h != nil {
		h(event.Message{UserKey: user, ID: id, Data: data})
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("redis: encode: " + err.Error())
	}
	return b
}
