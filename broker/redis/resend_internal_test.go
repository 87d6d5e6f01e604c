package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// redisErr is an error reply from a Redis server.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

func cmd(err error, args ...any) goredis.Cmder {
	c := goredis.NewCmd(context.Background(), args...)
	c.SetErr(err)
	return c
}

// A pipeline's commands are sent again after a failover only when they never
// ran, and a transaction only whole: a part of it sent alone would run
// outside MULTI.
func TestResendable(t *testing.T) {
	dial := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	moved := redisErr("MOVED 1884 127.0.0.1:7001")
	for _, tc := range []struct {
		name       string
		cmds       []goredis.Cmder
		again      int
		wantReload bool
	}{
		{"dial failed: every command again", []goredis.Cmder{cmd(dial, "set", "a", 1), cmd(dial, "set", "b", 1)}, 2, true},
		{"one refused, one done", []goredis.Cmder{cmd(moved, "set", "a", 1), cmd(nil, "set", "b", 1)}, 1, true},
		{"connection lost after the write: may have run", []goredis.Cmder{cmd(io.EOF, "set", "a", 1)}, 0, true},
		{"a script's own error is not the topology's", []goredis.Cmder{cmd(redisErr("ERR boom"), "evalsha", "x", 0)}, 0, false},
		{"transaction that never reached the node: whole",
			[]goredis.Cmder{cmd(dial, "multi"), cmd(dial, "set", "a", 1), cmd(dial, "exec")}, 3, true},
		{"transaction refused inside: not in part",
			[]goredis.Cmder{cmd(nil, "multi"), cmd(moved, "set", "a", 1), cmd(redisErr("EXECABORT Transaction discarded"), "exec")}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again, reload := resendable(tc.cmds)
			if len(again) != tc.again || reload != tc.wantReload {
				t.Fatalf("resendable: %d commands again, reload %v; want %d, %v", len(again), reload, tc.again, tc.wantReload)
			}
		})
	}
}
