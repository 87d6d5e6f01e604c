package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/tenant"
)

// Key layout. On one Redis or Sentinel a key is prefix+kind+":"+id, as it
// always was, so upgrading loses nothing. On a cluster the id is a hash tag,
// prefix+kind+":{"+id+"}": every key of one user (active calls, log, recent
// calls, versions) and the user's sharded channel share the user's slot,
// and a call's record and outbox share the call's slot, so each script
// touches one slot. An id holding a brace would cut the tag short or leave
// it empty; it is tagged by a digest instead, followed by the id itself.
func (b *Broker) clusterKey(kind, id string) string {
	return b.cfg.Prefix + kind + ":" + hashTag(id)
}

func hashTag(id string) string {
	if !strings.ContainsAny(id, "{}") {
		return "{" + id + "}"
	}
	sum := sha256.Sum256([]byte(id))
	return "{#" + hex.EncodeToString(sum[:8]) + "}" + id
}

// userOps is one user's part of a commit on a cluster.
type userOps struct {
	User string `json:"u"`
	Args []any  `json:"a"`
}

// clusterOps lays out a commit's consequences per user (the cluster form of
// commitArgs), in the order commitArgs lists them.
func (b *Broker) clusterOps(callID string, rec *event.CallState, outs []event.Out) []userOps {
	var list []userOps
	idx := map[string]int{}
	add := func(user string, args ...any) {
		i, ok := idx[user]
		if !ok {
			i = len(list)
			idx[user] = i
			list = append(list, userOps{User: user})
		}
		list[i].Args = append(list[i].Args, args...)
	}
	for _, ch := range rec.Active(outs, b.cfg.Now()) {
		if ch.Leg == nil {
			add(ch.UserKey, "d")
		} else {
			add(ch.UserKey, "a", string(mustJSON(ch.Leg.Last)), int(event.TalkingTTL.Seconds()))
		}
	}
	for _, o := range outs {
		if o.Record != nil {
			add(o.UserKey, "k", o.Record.CallID, string(mustJSON(o.Record)), o.Record.Start.Unix(),
				b.cfg.RecentCalls, int(b.cfg.RecentTTL.Seconds()))
		}
		if o.Payload != nil {
			add(o.UserKey, "e", string(o.Payload), b.cfg.LogSize, int(b.cfg.LogTTL.Seconds()))
		}
	}
	return list
}

// commitCluster is commit's two steps on a cluster (see clusterCASScript):
// ok, or the record Redis holds instead of the one expected.
func (b *Broker) commitCluster(ctx context.Context, callID string, raw, next []byte, ops []userOps) (cur []byte, ok bool, err error) {
	blob := ""
	if len(ops) > 0 {
		blob = string(mustJSON(ops))
	}
	keys := []string{b.key("call", callID), b.key("outbox", callID)}
	v, err := b.runScript(ctx, clusterCASScript, keys, raw, next, int(b.cfg.RecordTTL.Seconds()), blob,
		max(int(b.cfg.OutboxTTL.Seconds()), 1))
	if err != nil {
		return nil, false, err
	}
	switch v := v.(type) {
	case string:
		return []byte(v), false, nil
	case []any:
		if len(v) != 4 {
			break
		}
		version, _ := v[1].(string)
		prevV, _ := v[2].(string)
		prevOps, _ := v[3].(string)
		return nil, true, b.applyOutboxes(ctx, callID, outbox{prevV, prevOps}, outbox{version, blob})
	}
	return nil, false, fmt.Errorf("commit: unexpected reply %T", v)
}

// outbox is a committed version's ops, as stored.
type outbox struct{ version, ops string }

// flushOutbox applies what the call's outbox holds, in case the node that
// committed it failed before its second step: a repeated webhook that
// changes nothing comes here, so the PBX's retry of a failed webhook
// finishes its delivery.
func (b *Broker) flushOutbox(ctx context.Context, callID string) error {
	v, err := b.runScript(ctx, clusterOutboxScript, []string{b.key("outbox", callID)})
	if err != nil {
		return err
	}
	parts, _ := v.([]any)
	if len(parts) != 2 {
		return errors.New("outbox: unexpected reply")
	}
	version, _ := parts[0].(string)
	ops, _ := parts[1].(string)
	return b.applyOutboxes(ctx, callID, outbox{version, ops})
}

// applyOutboxes runs the users' parts of the given versions, in order, in
// one pipeline: commands for one slot keep their order in it.
func (b *Broker) applyOutboxes(ctx context.Context, callID string, boxes ...outbox) error {
	type run struct {
		keys []string
		args []any
	}
	var runs []run
	for _, box := range boxes {
		if box.ops == "" || box.version == "" {
			continue
		}
		var ops []userOps
		if err := json.Unmarshal([]byte(box.ops), &ops); err != nil {
			return fmt.Errorf("outbox of %s: %w", callID, err)
		}
		for _, u := range ops {
			keys := []string{b.key("active", u.User), b.key("recent", u.User), b.key("recent-idx", u.User),
				b.key("log", u.User), b.key("versions", u.User)}
			args := append([]any{callID, box.version, b.channel(u.User), int(b.cfg.LogTTL.Seconds())}, u.Args...)
			runs = append(runs, run{keys, args})
		}
	}
	if len(runs) == 0 {
		return nil
	}
	cmds := make([]*goredis.Cmd, len(runs))
	pipe := b.rdb.Pipeline()
	for i, r := range runs {
		cmds[i] = userOpsScript.EvalSha(ctx, pipe, r.keys, r.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own result
	for i, c := range cmds {
		err := c.Err()
		if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			// That node has not seen the script (a new or restarted
			// node): send it whole, which also caches it there. In order,
			// so one user's versions still apply oldest first.
			err = userOpsScript.Eval(ctx, b.rdb, runs[i].keys, runs[i].args...).Err()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// markSeenCluster is MarkSeen on a cluster: the user's keys in one script,
// then each marked call's record (see clusterMarkSeenScript).
// user is the scoped key (the user's log and recent list); a tenant's call
// records live under scoped ids and remember the local login, as in MarkSeen.
func (b *Broker) markSeenCluster(ctx context.Context, user, tid, local string, callIDs []string) (int, error) {
	args := make([]any, 0, 3+2*len(callIDs))
	args = append(args, b.channel(user), b.cfg.LogSize, int(b.cfg.LogTTL.Seconds()))
	for _, id := range callIDs {
		args = append(args, id, event.Encode(event.SeenFrame{Type: event.FrameSeen, CallID: id}))
	}
	keys := []string{b.key("recent", user), b.key("recent-idx", user), b.key("log", user)}
	v, err := b.runScript(ctx, clusterMarkSeenScript, keys, args...)
	if err != nil {
		return 0, err
	}
	marked, _ := v.([]any)
	if len(marked) == 0 {
		return 0, nil
	}
	pipe := b.rdb.Pipeline()
	cmds := make([]*goredis.Cmd, 0, len(marked))
	for _, m := range marked {
		id, _ := m.(string)
		cmds = append(cmds, seenByScript.EvalSha(ctx, pipe, []string{b.key("call", tenant.Key(tid, id))}, local))
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range cmds {
		if err := c.Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			id, _ := marked[i].(string)
			err = seenByScript.Eval(ctx, b.rdb, []string{b.key("call", tenant.Key(tid, id))}, local).Err()
			if err != nil {
				b.log.Debug("seen_by not noted", zap.Error(err))
			}
		}
	}
	return len(marked), nil
}
