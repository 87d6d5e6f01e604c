// Package transport is the hub's WebSocket connection: the server side of
// RFC 6455 over a hijacked HTTP connection, behind one small interface (Conn:
// write text, ping, close with a code; a Handler told what the peer sends),
// so the hub keeps only its registry and fan-out.
//
// It is built on github.com/gobwas/ws, a library made for event-driven
// servers: its public API is frame-level (read a header, unmask a payload,
// write a frame) and it keeps no goroutine or buffer per connection. So an
// idle connection here holds no goroutine: where the socket can be polled
// (plain TCP on Linux) a Poller starts a short read pass when it turns
// readable. TLS sockets, whose records hide readiness, and other systems keep
// one reader goroutine per connection.
//
// What the server accepts: masked frames without reserved bits or opcodes
// (no extension is negotiated), text and binary messages, fragmented or not,
// up to Server.ReadLimit bytes reassembled, control frames of at most 125
// bytes, interleaved or not. A violation is answered with a close frame
// (1002 protocol error, 1007 invalid UTF-8 in a text message, 1009 message
// too big) and the connection is closed once the peer has seen it.
package transport

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// Conn is one server-side WebSocket connection. Its methods may be called
// from any goroutine.
type Conn interface {
	// Start hands reading to the connection: h is told what the peer sends,
	// from one goroutine at a time, until h.Ended. Call it once.
	Start(h Handler)
	// WriteText writes each of msgs as one text frame, all in one socket
	// write. It blocks until they are written or Server.WriteTimeout passed;
	// ErrClosed once Close was called.
	WriteText(msgs ...[]byte) error
	// Ping writes an empty ping frame; it writes nothing once Close was
	// called.
	Ping() error
	// Close starts the close handshake: it writes a close frame with code and
	// reason (cut to 123 bytes) and returns. Reading goes on until the peer's
	// close frame, its end of the stream, or Server.WriteTimeout; then the
	// socket is closed and the Handler's Ended is called. Calls after the
	// first do nothing.
	Close(code int, reason string) error
	// CloseNow closes the socket without a handshake.
	CloseNow()
}

// Handler receives what a Conn reads, from one goroutine at a time.
type Handler interface {
	// Frame is called for every frame the peer sends (data or control),
	// before it is handled: frames are what a rate limit counts.
	Frame()
	// Message is called with each whole data message: text when it is a text
	// message (valid UTF-8), else binary. p is valid only during the call.
	// After the connection's Close no message is delivered.
	Message(text bool, p []byte)
	// Pong is called for each pong.
	Pong()
	// Ended is called once, when the socket is closed and nothing more will
	// be read: err is nil after a close handshake the server began, a
	// CloseError after one the peer began, else what failed (the socket, the
	// handshake's time running out).
	Ended(err error)
}

// Defaults for Server.
const (
	// DefaultReadLimit bytes may a data message carry.
	DefaultReadLimit = 1024
	// DefaultWriteTimeout bounds a socket write, and the close handshake.
	DefaultWriteTimeout = 10 * time.Second
)

// Server upgrades HTTP requests to Conns; zero values take the defaults. It
// is not changed after its first Upgrade.
type Server struct {
	// ReadLimit is the largest data message accepted, reassembled; past it
	// the connection is closed with 1009.
	ReadLimit int64
	// WriteTimeout bounds every socket write (to between 3/4 of it and all of
	// it; see conn.write) and the wait for the peer's close frame.
	WriteTimeout time.Duration
	// Poller watches idle sockets; nil: a reader goroutine per connection.
	Poller *Poller
}

// ErrClosed: the connection's close handshake has begun.
var ErrClosed = errors.New("transport: connection closing")

// readBufferSize is the read buffer of a connection while a pass reads:
// clients send small acks and control frames.
const readBufferSize = 256

// Upgrade answers the WebSocket handshake of r and returns the connection;
// the caller checked everything else (authentication, origin) before. On an
// error the response has been written.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request) (Conn, error) {
	u := ws.HTTPUpgrader{Timeout: s.writeTimeout()}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	c := &conn{srv: s, nc: nc}
	c.in.nc = nc
	if n := rw.Reader.Buffered(); n > 0 { // bytes the client sent right behind its request
		b, _ := rw.Reader.Peek(n)
		c.in.pre = bytes.Clone(b)
	}
	// net/http's 4 KiB buffers (rw) are left to the collector: an idle
	// connection keeps no buffer at all.
	if s.Poller != nil {
		if sc, ok := nc.(syscall.Conn); ok { // plain TCP; TLS is not
			if rc, err := sc.SyscallConn(); err == nil {
				c.in.rc = rc
			}
		}
	}
	return c, nil
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) readLimit() int64 {
	if s.ReadLimit > 0 {
		return s.ReadLimit
	}
	return DefaultReadLimit
}

// conn implements Conn.
type conn struct {
	srv *Server
	nc  net.Conn
	h   Handler // set by Start

	wmu       sync.Mutex  // held by a write
	wdeadline int64       // unix nanoseconds when the write deadline was last moved; guarded by wmu
	closeSent atomic.Bool // the close frame is written (or being written); set under wmu

	// The reader's state: touched only by the reader of the moment (a pass or
	// the reader goroutine), one at a time (see readState).
	in      source
	br      *bufio.Reader // nil between passes: an idle connection holds no buffer
	hdr     [ws.MaxHeaderSize - 2]byte
	msg     []byte    // the data message being reassembled
	msgOp   ws.OpCode // its opcode while fragmented, else 0
	failed  bool      // a protocol violation was answered: skip frames up to the peer's close
	failure error     // the first violation, for Ended
	closing bool      // the reader saw closeSent

	mu     sync.Mutex  // guards the fields below
	rs     readState   // see readState
	pollID uint64      // the poller's name for the socket; 0: not polled
	timer  *time.Timer // ends the close handshake; nil before Close
}

var _ Conn = (*conn)(nil)

// readState is who reads the socket. Its transitions are in read.go (Start,
// readable, park, end, CloseNow), each under conn.mu:
//
//	new      --Start--------> reading
//	reading  --nothing more--> armed    (polled: the poller reports more)
//	armed    --readable-----> reading
//	reading  --CloseNow-----> draining  (the pass sees the closed socket)
//	reading, draining --the pass ends--> ended   (the pass calls Ended)
//	new, armed --CloseNow---> ended     (CloseNow calls Ended)
type readState uint8

const (
	rsNew readState = iota
	rsArmed
	rsReading
	rsDraining
	rsEnded
)

func (c *conn) polled() bool { return c.srv.Poller != nil && c.in.rc != nil }

// frameBuf gathers frames for one socket write; pooled, so a connection
// holds no write buffer between writes.
type frameBuf struct {
	hdr [ws.MaxHeaderSize]byte
	b   []byte
}

// Write appends p: ws.WriteHeaderBuffer writes headers through it.
func (f *frameBuf) Write(p []byte) (int, error) {
	f.b = append(f.b, p...)
	return len(p), nil
}

func (f *frameBuf) frame(op ws.OpCode, p []byte) {
	_ = ws.WriteHeaderBuffer(f, ws.Header{Fin: true, OpCode: op, Length: int64(len(p))}, f.hdr[:])
	f.b = append(f.b, p...)
}

// maxKeptBuffer is the largest write buffer put back in the pool.
const maxKeptBuffer = 16 << 10

var frameBufs = sync.Pool{New: func() any { return new(frameBuf) }}

func getFrameBuf() *frameBuf { f := frameBufs.Get().(*frameBuf); f.b = f.b[:0]; return f }

func putFrameBuf(f *frameBuf) {
	if cap(f.b) <= maxKeptBuffer {
		frameBufs.Put(f)
	}
}

func (c *conn) WriteText(msgs ...[]byte) error {
	f := getFrameBuf()
	defer putFrameBuf(f)
	for _, m := range msgs {
		f.frame(ws.OpText, m)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return ErrClosed
	}
	return c.write(f.b)
}

func (c *conn) Ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return nil // the close handshake is the last word
	}
	return c.write(ws.CompiledPing)
}

// pong answers a ping with its payload, unless closing.
func (c *conn) pong(p []byte) error {
	f := getFrameBuf()
	defer putFrameBuf(f)
	f.frame(ws.OpPong, p)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return nil
	}
	return c.write(f.b)
}

// maxReason is the longest close reason: a control frame's 125 bytes less
// the code.
const maxReason = ws.MaxControlFramePayloadSize - 2

func (c *conn) Close(code int, reason string) error {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	f := getFrameBuf()
	defer putFrameBuf(f)
	f.frame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))
	c.wmu.Lock()
	if c.closeSent.Load() {
		c.wmu.Unlock()
		return nil
	}
	c.closeSent.Store(true)
	err := c.write(f.b)
	c.wmu.Unlock()
	if err != nil {
		c.CloseNow()
		return err
	}
	c.mu.Lock()
	if c.rs != rsEnded && c.timer == nil {
		c.timer = time.AfterFunc(c.srv.writeTimeout(), c.CloseNow)
	}
	c.mu.Unlock()
	return nil
}

// write writes p within the write timeout; the caller holds wmu. The
// deadline is never cleared (only writes use it) and is moved only when a
// quarter of the timeout has passed since it was set (each move is a
// runtime timer update): a write gets between 3/4 of the timeout and all of
// it.
func (c *conn) write(p []byte) error {
	timeout := c.srv.writeTimeout()
	if now := time.Now().UnixNano(); now-c.wdeadline > int64(timeout/4) {
		_ = c.nc.SetWriteDeadline(time.Unix(0, now).Add(timeout))
		c.wdeadline = now
	}
	_, err := c.nc.Write(p)
	return err
}
