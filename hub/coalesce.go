package hub

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// coalescer sits under coder/websocket's buffered writer, on the raw socket.
// coder/websocket flushes once per frame, one system call each; while a
// flush batch holds the coalescer, those flushes only append to a buffer,
// and release sends the whole batch in one write. Outside a batch (close
// frames, the hello) it passes writes straight through. Whoever writes,
// frames reach the socket in the order coder/websocket produced them.
//
// Every socket write it makes is bounded by timeout, so coder/websocket's
// writes need no context deadline of their own (a context and a timer per
// frame were a fifth of the node's allocations under load).
//
// It also follows the frame boundaries of the stream, so the hub's pings go
// between two frames, never inside one: coder/websocket's own Ping would wait
// for its pong inside a pending Read, and a polled session has none.
type coalescer struct {
	conn    net.Conn
	timeout time.Duration

	mu       sync.Mutex // guards the fields below
	deadline time.Time  // when the write deadline was last set
	hold     bool
	buf      []byte   // nil when idle, so idle sessions hold nothing
	hdr      [14]byte // the header of the frame being written, so far
	hdrLen   uint8
	left     uint64 // payload bytes of the frame being written still to come
	pingDue  bool   // a ping waits for the end of the frame being written
	closing  bool   // the session is closing: no more data frames
}

// errMidFrame: coder/websocket is writing a frame of its own right now.
var errMidFrame = errors.New("hub: a frame is being written")

// text writes one text frame whole, bypassing coder/websocket's writer: its
// mutex, context hook and buffer copies cost more than the frame itself
// under group calls. The frame goes in only between two frames, so it never
// lands inside one coder/websocket is writing (a close, a pong); then
// errMidFrame, and the caller writes through coder/websocket instead.
func (c *coalescer) text(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing:
		return errClosing
	case !c.between():
		return errMidFrame
	}
	if c.hold {
		c.buf = append(appendTextHeader(c.buf, len(p)), p...)
		return nil
	}
	_, err := c.send(append(appendTextHeader(make([]byte, 0, len(p)+10), len(p)), p...))
	return err
}

// appendTextHeader appends the header of an unmasked final text frame.
func appendTextHeader(b []byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0x81, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0x81, 127), uint64(n))
	}
}

// close refuses data frames and pings from now on; coder/websocket still
// writes its close frame through.
func (c *coalescer) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
}

// maxKeptBuffer is the largest batch buffer kept for the next batch.
const maxKeptBuffer = 4 << 10

// pingFrame is an unmasked, final, empty ping.
var pingFrame = []byte{0x89, 0x00}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := c.track(p)
	if c.pingDue && at >= 0 {
		c.pingDue = false
		joined := make([]byte, 0, len(p)+len(pingFrame))
		joined = append(append(append(joined, p[:at]...), pingFrame...), p[at:]...)
		if _, err := c.put(joined); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.put(p)
}

// put sends p, or gathers it while a batch holds the coalescer.
func (c *coalescer) put(p []byte) (int, error) {
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.send(p)
}

// send writes to the socket within the timeout. The deadline is never
// cleared (only writes use it) and is moved only when a quarter of the
// timeout has passed since it was set (each move is a runtime timer update):
// a write gets between 3/4 of the timeout and all of it.
func (c *coalescer) send(p []byte) (int, error) {
	if now := time.Now(); now.Sub(c.deadline) > c.timeout/4 {
		_ = c.conn.SetWriteDeadline(now.Add(c.timeout))
		c.deadline = now
	}
	return c.conn.Write(p)
}

// ping sends a ping now if the stream is between frames, else right after
// the frame being written.
func (c *coalescer) ping() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil // the close handshake is the last word
	}
	if !c.between() {
		c.pingDue = true
		return nil
	}
	if c.hold {
		c.buf = append(c.buf, pingFrame...)
		return nil
	}
	_, err := c.send(pingFrame)
	return err
}

func (c *coalescer) between() bool { return c.hdrLen == 0 && c.left == 0 }

// track follows p through the frame structure and returns the offset in p of
// the first point between two frames (0 if p starts there), or -1.
func (c *coalescer) track(p []byte) int {
	first := -1
	if c.between() {
		first = 0
	}
	for i := 0; i < len(p); {
		if c.left > 0 {
			k := min(uint64(len(p)-i), c.left)
			c.left -= k
			i += int(k)
		} else {
			c.hdr[c.hdrLen] = p[i]
			c.hdrLen++
			i++
			if n := headerSize(c.hdr[:c.hdrLen]); n == int(c.hdrLen) {
				c.left = payloadSize(c.hdr[:n])
				c.hdrLen = 0
			}
		}
		if first < 0 && c.between() {
			first = i
		}
	}
	return first
}

// headerSize is the length of the frame header h begins, or 0 while h is too
// short to tell.
func headerSize(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // masked; servers never mask, but the tracker should not lose count
	}
	return n
}

func payloadSize(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}

// holdWrites starts a batch.
func (c *coalescer) holdWrites() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// release ends the batch: what it gathered goes out in one write.
func (c *coalescer) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.send(c.buf)
	c.buf = c.buf[:0]
	if cap(c.buf) > maxKeptBuffer {
		c.buf = nil
	}
	return err
}
