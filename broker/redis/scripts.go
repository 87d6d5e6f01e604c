package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// luaSend defines send(logKey, frame, channel, maxlen, ttl), shared by the
// scripts that deliver frames: append the frame to the user's log, taking
// the stream id as the frame's id, and publish it with the id spliced in
// after the frame's first member ("type"), as event.WithID does for
// replays; a frame's type is one of event's Frame* constants, which hold no
// comma.
const luaSend = `
local function send(log, p, channel, maxlen, ttl)
  local id = redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'f', p)
  redis.call('EXPIRE', log, ttl)
  local c = string.find(p, ',', 1, true)
  redis.call('PUBLISH', channel, id .. '\n' .. string.sub(p, 1, c) .. '"id":"' .. id .. '",' .. string.sub(p, c + 1))
end
`

// shardedSend is luaSend on a cluster: SPUBLISH to the user's sharded
// channel, which lives on the user's slot (Redis 7), so a frame reaches
// only the shard that holds the user rather than every node of the cluster.
var shardedSend = strings.Replace(luaSend, "'PUBLISH'", "'SPUBLISH'", 1)

// commitScript stores a call's new record and all its consequences in one
// atomic step, but only if the record is still the one the update was
// computed from (compare-and-set). The node computes from the record it last
// saw, so a webhook usually costs this one command; when that record is
// stale the script answers with the current one for the retry.
//
// KEYS[1] the call record. ARGV[1] the record as read ("" when there was
// none), ARGV[2] the new record, ARGV[3] its TTL in seconds. Then a list of
// operations, each a letter and its arguments (keys travel in ARGV: this
// script serves one Redis or Sentinel; a cluster commits in two steps, see
// clusterCASScript):
//
//	a activeKey callid frameJSON ttl              the user's active call
//	d activeKey callid                            no longer active
//	k hash zset callid recordJSON score max ttl   keep in recent calls, trimmed to max
//	e logKey frame channel maxlen ttl             append to the user's log and publish (luaSend)
//
// Returns the current record ("" for none) when it is not ARGV[1] (nothing
// written), else 1.
var commitScript = goredis.NewScript(luaSend + `
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'a' then
    redis.call('HSET', ARGV[i+1], ARGV[i+2], ARGV[i+3])
    redis.call('EXPIRE', ARGV[i+1], ARGV[i+4])
    i = i + 5
  elseif op == 'd' then
    redis.call('HDEL', ARGV[i+1], ARGV[i+2])
    i = i + 3
  elseif op == 'k' then
    local h, z = ARGV[i+1], ARGV[i+2]
    redis.call('HSET', h, ARGV[i+3], ARGV[i+4])
    redis.call('ZADD', z, ARGV[i+5], ARGV[i+3])
    local n = redis.call('ZCARD', z) - tonumber(ARGV[i+6])
    if n > 0 then
      local old = redis.call('ZRANGE', z, 0, n - 1)
      redis.call('ZREMRANGEBYRANK', z, 0, n - 1)
      redis.call('HDEL', h, unpack(old))
    end
    redis.call('EXPIRE', h, ARGV[i+7])
    redis.call('EXPIRE', z, ARGV[i+7])
    i = i + 8
  elseif op == 'e' then
    send(ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5])
    i = i + 6
  else
    return redis.error_reply('callpop: unknown commit op ' .. tostring(op))
  end
end
return 1
`)

// snapshotScript reads what a new session starts from in one atomic step:
// the user's active calls, the newest log entry, and with a since id whether
// it is still in the log and what follows it. Atomic, so the active calls
// and the newest id agree (the hello's promise rests on it); a script rather
// than MULTI so it can share the update pipelines.
//
// KEYS[1] active hash, KEYS[2] log stream; ARGV[1] since ("" for none),
// ARGV[2] most entries after it. Returns {active, newest[, exact, after]}.
var snapshotScript = goredis.NewScript(`
local active = redis.call('HGETALL', KEYS[1])
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if ARGV[1] == '' then return {active, newest} end
local exact = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1], 'COUNT', 1)
local after = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
return {active, newest, exact, after}
`)

// markSeenScript marks missed calls seen for one user, each atomically with
// its "seen" frame. It looks every id up in the user's recent calls first
// and touches nothing for an id not there, not missed, or already seen:
// a client naming ids can neither create keys nor reach another user's
// calls. The call's shared record, while Redis still keeps it, remembers
// the user in seen_by (event.CallState.MarkSeen), so a later rating keeps
// the call seen; it is never created here. The record is re-encoded by
// cjson: other key order and escapes, the same JSON to encoding/json (a
// node's cached copy of it then fails commitScript's compare-and-set and is
// read again).
//
// KEYS[1] recent hash, KEYS[2] recent zset, KEYS[3] log stream. ARGV[1]
// channel, ARGV[2] log maxlen, ARGV[3] log TTL in seconds, ARGV[4] the call
// record key prefix, ARGV[5] the user key, then pairs of callid and its
// seen frame. Returns how many calls changed; a repeated id counts once.
var markSeenScript = goredis.NewScript(luaSend + `
local marked = 0
local i = 6
while i + 1 <= #ARGV do
  local id, frame = ARGV[i], ARGV[i+1]
  i = i + 2
  local raw = false
  if redis.call('ZSCORE', KEYS[2], id) then raw = redis.call('HGET', KEYS[1], id) end
  local ok, r = false, nil
  if raw then ok, r = pcall(cjson.decode, raw) end
  if ok and type(r) == 'table' and r.direction == 'in' and r.status ~= 'Success' and r.seen ~= true then
    r.seen = true
    redis.call('HSET', KEYS[1], id, cjson.encode(r))
    local ck = ARGV[4] .. id
    local cur = redis.call('GET', ck)
    local okc, c = false, nil
    if cur then okc, c = pcall(cjson.decode, cur) end
    if okc and type(c) == 'table' then
      if type(c.seen_by) ~= 'table' then c.seen_by = {} end
      local has = false
      for _, u in ipairs(c.seen_by) do
        if u == ARGV[5] then has = true end
      end
      if not has then
        table.insert(c.seen_by, ARGV[5])
        redis.call('SET', ck, cjson.encode(c), 'KEEPTTL')
      end
    end
    send(KEYS[3], frame, ARGV[1], ARGV[2], ARGV[3])
    marked = marked + 1
  end
end
return marked
`)

// On Redis Cluster the keys a script touches must share one hash slot, and a
// call's record and its users' keys do not (see clusterKey). A commit is
// then two steps: clusterCASScript swaps the record, on the call's slot,
// together with an outbox of what the users' keys must receive and a
// version; then userOpsScript applies each user's part on that user's slot,
// publishing on the user's sharded channel. The version orders the second
// steps of two nodes' commits of one call: a user's keys take a call's ops
// only if their version is newer than the last they took for that call. The
// node whose commit follows another's applies the earlier outbox first (its
// CAS returns it), so a node that stalls between its two steps neither loses
// the earlier update's frames nor sends them after the later ones.
//
// What is kept how long: the record for RecordTTL (24 h) after the call's
// last commit, its outbox for OutboxTTL (15 min): the outbox is only needed
// until the second step ran, or the PBX's retry or the call's next event
// came. A node that dies between its steps, with no retry and no next event
// of that call within OutboxTTL, loses that one version's user ops for good:
// its frames are neither published nor logged (a live widget misses them,
// a resume from the log too), and the users' active calls and recent
// record stay as the previous version left them. The call's next commit,
// whenever it comes, writes its own ops (each user's active entry, the
// final record), which hello's snapshot then shows; a call with no next
// commit leaves a ringing popup that hello's snapshot drops as stale after
// event.RingingTTL (TalkingTTL when answered).

// clusterCASScript: KEYS[1] the call record, KEYS[2] its outbox (a hash: v,
// ops). ARGV[1] the record as read ("" for none), ARGV[2] the new record,
// ARGV[3] its TTL in seconds, ARGV[4] the users' ops (JSON, "" for none),
// ARGV[5] the outbox's TTL in seconds. Returns the current record when it
// is not ARGV[1], else {1, version, previous version, previous ops}.
//
// The version is the server's clock in microseconds, or one more than the
// last, so it grows across commits while the outbox lives; doubles hold it
// exactly. Once the outbox expired it is the clock alone, and still larger
// than the last version, even after a failover to a replica whose clock is
// behind: the outbox's expiry is an absolute time replicated with it (Redis
// 7 replicates expiries as timestamps; a cluster needs Redis 7 anyway), so
// the server that no longer finds it has a clock past last version +
// OutboxTTL. Only a failover that lost the last commit itself (asynchronous
// replication) can yield a version a user already took, if the new
// master's clock is behind by more than the time since; the users' keys
// then skip that commit's ops, as for any lost write.
var clusterCASScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
local prev = redis.call('HMGET', KEYS[2], 'v', 'ops')
local t = redis.call('TIME')
local v = math.max((tonumber(prev[1]) or 0) + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
local vs = string.format('%.0f', v)
redis.call('HSET', KEYS[2], 'v', vs, 'ops', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {1, vs, prev[1] or '', prev[2] or ''}
`)

// clusterOutboxScript reads a call's outbox: {version, ops}.
var clusterOutboxScript = goredis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'v', 'ops')
return {o[1] or '', o[2] or ''}
`)

// userOpsScript applies one commit's ops to one user's keys, once and in
// version order.
//
// KEYS[1] active hash, KEYS[2] recent hash, KEYS[3] recent zset, KEYS[4]
// log stream, KEYS[5] versions hash (callid → last version applied).
// ARGV[1] callid, ARGV[2] version, ARGV[3] channel, ARGV[4] versions TTL,
// then operations as in commitScript without their keys:
//
//	a frameJSON ttl
//	d
//	k callid recordJSON score max ttl
//	e frame maxlen ttl
//
// Returns 1, or 0 when this or a later version was applied already.
var userOpsScript = goredis.NewScript(shardedSend + `
local seen = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= seen then return 0 end
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[5], ARGV[4])
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'a' then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[i+1])
    redis.call('EXPIRE', KEYS[1], ARGV[i+2])
    i = i + 3
  elseif op == 'd' then
    redis.call('HDEL', KEYS[1], ARGV[1])
    i = i + 1
  elseif op == 'k' then
    local h, z = KEYS[2], KEYS[3]
    redis.call('HSET', h, ARGV[i+1], ARGV[i+2])
    redis.call('ZADD', z, ARGV[i+3], ARGV[i+1])
    local n = redis.call('ZCARD', z) - tonumber(ARGV[i+4])
    if n > 0 then
      local old = redis.call('ZRANGE', z, 0, n - 1)
      redis.call('ZREMRANGEBYRANK', z, 0, n - 1)
      redis.call('HDEL', h, unpack(old))
    end
    redis.call('EXPIRE', h, ARGV[i+5])
    redis.call('EXPIRE', z, ARGV[i+5])
    i = i + 6
  elseif op == 'e' then
    send(KEYS[4], ARGV[i+1], ARGV[3], ARGV[i+2], ARGV[i+3])
    i = i + 4
  else
    return redis.error_reply('callpop: unknown user op ' .. tostring(op))
  end
end
return 1
`)

// clusterMarkSeenScript is markSeenScript's first half on a cluster: the
// user's keys only. It returns the ids it marked; seenByScript then notes
// the user in each call's record, on the call's slot. Between the two a
// commit of the call may rewrite the recent entry without the mark (its
// record did not have seen_by yet): the call then shows unseen again until
// marked again, which is all a cluster gives up here.
//
// KEYS as markSeenScript; ARGV[1] channel, ARGV[2] log maxlen, ARGV[3] log
// TTL, then pairs of callid and its seen frame.
var clusterMarkSeenScript = goredis.NewScript(shardedSend + `
local marked = {}
local i = 4
while i + 1 <= #ARGV do
  local id, frame = ARGV[i], ARGV[i+1]
  i = i + 2
  local raw = false
  if redis.call('ZSCORE', KEYS[2], id) then raw = redis.call('HGET', KEYS[1], id) end
  local ok, r = false, nil
  if raw then ok, r = pcall(cjson.decode, raw) end
  if ok and type(r) == 'table' and r.direction == 'in' and r.status ~= 'Success' and r.seen ~= true then
    r.seen = true
    redis.call('HSET', KEYS[1], id, cjson.encode(r))
    send(KEYS[3], frame, ARGV[1], ARGV[2], ARGV[3])
    table.insert(marked, id)
  end
end
return marked
`)

// seenByScript: KEYS[1] a call record; ARGV[1] a user key. Adds the user to
// the record's seen_by while Redis still keeps it (markSeenScript's second
// half, for a cluster).
var seenByScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, c = pcall(cjson.decode, cur)
if not ok or type(c) ~= 'table' then return 0 end
if type(c.seen_by) ~= 'table' then c.seen_by = {} end
for _, u in ipairs(c.seen_by) do
  if u == ARGV[1] then return 0 end
end
table.insert(c.seen_by, ARGV[1])
redis.call('SET', KEYS[1], cjson.encode(c), 'KEEPTTL')
return 1
`)
