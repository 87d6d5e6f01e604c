package hub

import (
	"net"
	"sync"
	"time"
)

// coalescer sits under coder/websocket's buffered writer, on the raw socket.
// coder/websocket flushes once per frame, one system call each; while a
// flush batch holds the coalescer, those flushes only append to a buffer,
// and release sends the whole batch in one write. Outside a batch (pings,
// close frames, the hello) it passes writes straight through. Whoever
// writes, frames reach the socket in the order coder/websocket produced them.
type coalescer struct {
	conn net.Conn

	mu   sync.Mutex
	hold bool   // guarded by mu
	buf  []byte // guarded by mu; nil when idle, so idle sessions hold nothing
}

// maxKeptBuffer is the largest batch buffer kept for the next batch.
const maxKeptBuffer = 4 << 10

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.conn.Write(p)
}

// holdWrites starts a batch.
func (c *coalescer) holdWrites() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// release ends the batch: what it gathered goes out in one write, bounded by
// timeout (coder/websocket's own write timeouts no longer cover it).
func (c *coalescer) release(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	if len(c.buf) == 0 {
		return nil
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.conn.Write(c.buf)
	_ = c.conn.SetWriteDeadline(time.Time{})
	c.buf = c.buf[:0]
	if cap(c.buf) > maxKeptBuffer {
		c.buf = nil
	}
	return err
}
