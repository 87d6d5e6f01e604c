package redis

import goredis "github.com/redis/go-redis/v9"

// emitScript appends a frame to a user's log and publishes it in one step,
// so a frame is never in the log without having been published or the other
// way round. The stream id becomes the frame's id: it is spliced in after the
// frame's first member ("type"), as event.WithID does for replays; a frame's
// type is one of event's Frame* constants, which hold no comma.
//
// KEYS[1] log stream; ARGV[1] frame without id, ARGV[2] channel,
// ARGV[3] max log length, ARGV[4] log TTL in seconds. Returns the id.
var emitScript = goredis.NewScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local p = ARGV[1]
local i = string.find(p, ',', 1, true)
redis.call('PUBLISH', ARGV[2], id .. '\n' .. string.sub(p, 1, i) .. '"id":"' .. id .. '",' .. string.sub(p, i + 1))
return id
`)

// keepScript stores a call record in a user's recent calls (a hash by callid
// and a sorted set by start time) and trims them to the newest ARGV[4].
//
// KEYS[1] hash, KEYS[2] sorted set; ARGV[1] callid, ARGV[2] record JSON,
// ARGV[3] score (start, unix seconds), ARGV[4] max, ARGV[5] TTL in seconds.
var keepScript = goredis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local n = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if n > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, n - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
`)
