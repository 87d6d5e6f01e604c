package redis

import (
	"context"
	"errors"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// maxBatch bounds the commands sent in one pipeline.
const maxBatch = 256

// batcher sends the commands of concurrent webhooks to Redis together: while
// one pipeline is on the wire, the next fills up, so under load many
// webhooks share one write and one read instead of each paying its own
// round trip of system calls. With a single caller it adds one channel hop.
type batcher struct {
	rdb  goredis.UniversalClient
	reqs chan *batchReq
	done chan struct{}

	mu     sync.RWMutex // held for reading while sending to reqs
	closed bool         // guarded by mu
}

// errBatcherClosed is returned by do after stop.
var errBatcherClosed = errors.New("redis: broker closed")

type batchReq struct {
	cmd  goredis.Cmder
	sent chan struct{} // closed when cmd has its answer (or error)
}

var reqPool = sync.Pool{New: func() any { return &batchReq{sent: make(chan struct{}, 1)} }}

func newBatcher(rdb goredis.UniversalClient) *batcher {
	b := &batcher{rdb: rdb, reqs: make(chan *batchReq, maxBatch), done: make(chan struct{})}
	go b.loop()
	return b
}

// do runs cmd in the next pipeline and waits for its answer. The command is
// not abandoned when the caller's ctx ends: it either ran or failed by the
// client's own timeouts.
func (b *batcher) do(cmd goredis.Cmder) error {
	r := reqPool.Get().(*batchReq)
	r.cmd = cmd
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		cmd.SetErr(errBatcherClosed)
		return errBatcherClosed
	}
	b.reqs <- r
	b.mu.RUnlock()
	<-r.sent
	r.cmd = nil
	reqPool.Put(r)
	return cmd.Err()
}

// stop ends the loop once the queued commands are sent.
func (b *batcher) stop() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.reqs)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *batcher) loop() {
	defer close(b.done)
	batch := make([]*batchReq, 0, maxBatch)
	for r := range b.reqs {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.send(batch)
	}
}

func (b *batcher) send(batch []*batchReq) {
	ctx := context.Background()
	if len(batch) == 1 {
		_ = b.rdb.Process(ctx, batch[0].cmd)
	} else {
		p := b.rdb.Pipeline()
		for _, r := range batch {
			_ = p.Process(ctx, r.cmd)
		}
		_, _ = p.Exec(ctx) // each command carries its own result or error
	}
	for _, r := range batch {
		r.sent <- struct{}{}
	}
}
