package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// The inbound side. Browsers send little: a pong per ping and an ack per
// frame shown. On a polled socket no goroutine waits: the poller calls
// readable when data arrives, a pass reads the frames that are there (waiting
// on the network only inside a frame that has begun), then parks the socket
// with the poller again. Elsewhere one pass runs for the connection's life.

// source is what a pass reads: first the bytes the client sent right behind
// its upgrade request, then the socket; non-blocking between frames on a
// polled socket.
type source struct {
	nc       net.Conn
	rc       syscall.RawConn // nil when the socket cannot be polled
	pre      []byte
	nonblock bool // set by the pass while it looks for the next frame
}

var errWouldBlock = errors.New("transport: nothing more to read yet")

func (s *source) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		if len(s.pre) == 0 {
			s.pre = nil
		}
		return n, nil
	}
	if s.nonblock {
		return readNow(s.rc, p)
	}
	return s.nc.Read(p)
}

func (c *conn) Start(h Handler) {
	c.mu.Lock()
	c.h = h
	if c.rs != rsNew { // CloseNow came first
		c.mu.Unlock()
		go h.Ended(net.ErrClosed)
		return
	}
	c.rs = rsReading
	c.mu.Unlock()
	if c.polled() {
		if err := c.srv.Poller.add(c); err != nil {
			c.in.rc = nil // a reader goroutine then
		}
	}
	go c.pass() // reads what came with the request, or meanwhile
}

// readable starts a pass unless one runs; the poller calls it.
func (c *conn) readable() {
	c.mu.Lock()
	if c.rs != rsArmed {
		c.mu.Unlock()
		return
	}
	c.rs = rsReading
	c.mu.Unlock()
	go c.pass()
}

// pass reads frames until nothing more is buffered (polled) or the
// connection ends.
func (c *conn) pass() {
	polled := c.polled()
	for {
		if c.br == nil {
			c.br = bufio.NewReaderSize(&c.in, readBufferSize)
		}
		c.in.nonblock = polled
		_, err := c.br.Peek(1)
		c.in.nonblock = false
		if errors.Is(err, errWouldBlock) {
			c.park()
			return
		}
		if err == nil {
			err = c.readFrame()
		}
		if errors.Is(err, errHandshakeDone) {
			c.end(nil)
			return
		}
		if err != nil {
			c.end(err)
			return
		}
	}
}

// park hands the socket back to the poller after a pass; nothing is
// buffered, so the buffer goes.
func (c *conn) park() {
	c.br = nil
	c.mu.Lock()
	if c.rs == rsDraining {
		c.mu.Unlock()
		c.end(net.ErrClosed)
		return
	}
	// armed before re-arming: readiness reported after the re-arm must find
	// no pass running, or it would be lost.
	c.rs = rsArmed
	id := c.pollID
	c.mu.Unlock()
	if err := c.srv.Poller.rearm(id, c.in.rc); err != nil {
		c.CloseNow() // ends it, unless a CloseNow already did
	}
}

// end closes the socket and tells the handler; the reader of the moment
// calls it, once.
func (c *conn) end(err error) {
	if c.failure != nil {
		err = c.failure
	}
	c.nc.Close()
	c.mu.Lock()
	c.rs = rsEnded
	id := c.pollID
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.br, c.msg = nil, nil
	if id != 0 {
		c.srv.Poller.forget(id)
	}
	c.h.Ended(err)
}

func (c *conn) CloseNow() {
	c.nc.Close()
	c.mu.Lock()
	var end bool
	switch c.rs {
	case rsNew:
		c.rs = rsEnded // Start reports it
	case rsArmed:
		c.rs, end = rsEnded, true
	case rsReading:
		c.rs = rsDraining // the pass sees the closed socket and ends
	}
	id := c.pollID
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if end {
		if id != 0 {
			c.srv.Poller.forget(id)
		}
		c.h.Ended(net.ErrClosed)
	}
}

// errHandshakeDone ends reading once both close frames have passed.
var errHandshakeDone = errors.New("transport: closed")

// CloseError is what Ended gets when the peer closed with a code (0: none).
type CloseError struct{ Code int }

func (e CloseError) Error() string { return "transport: peer closed" }

// ViolationError is what Ended gets after the peer broke the protocol: the
// close code and reason it was sent.
type ViolationError struct {
	Code   int
	Reason string
}

func (e *ViolationError) Error() string {
	return fmt.Sprintf("transport: peer broke the protocol (%d %s)", e.Code, e.Reason)
}

// readFrame reads one frame and handles it; an error ends reading.
func (c *conn) readFrame() error {
	if !c.closing {
		c.closing = c.closeSent.Load()
	}
	h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:])
	if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
		return c.fail(ws.StatusProtocolError, "bad frame header")
	}
	if err != nil {
		return err
	}
	if c.failed { // after a violation only the peer's close frame counts
		if h.OpCode == ws.OpClose {
			return errHandshakeDone
		}
		_, err := io.CopyN(io.Discard, c.br, h.Length)
		return err
	}
	if !c.closing {
		c.h.Frame()
		c.closing = c.closeSent.Load() // the handler may have closed
	}
	state := ws.StateServerSide
	if c.msgOp != 0 {
		state = state.Set(ws.StateFragmented)
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return c.fail(ws.StatusProtocolError, err.Error())
	}
	if h.OpCode.IsControl() {
		return c.control(h)
	}
	if h.Length > c.srv.readLimit()-int64(len(c.msg)) {
		return c.fail(ws.StatusMessageTooBig, "message too big")
	}
	n := len(c.msg)
	c.msg = slices.Grow(c.msg, int(h.Length))[:n+int(h.Length)]
	if _, err := io.ReadFull(c.br, c.msg[n:]); err != nil {
		return err
	}
	ws.Cipher(c.msg[n:], h.Mask, 0)
	if h.OpCode != ws.OpContinuation {
		c.msgOp = h.OpCode
	}
	if !h.Fin {
		return nil
	}
	op, msg := c.msgOp, c.msg
	c.msgOp, c.msg = 0, nil
	if op == ws.OpText && !utf8.Valid(msg) {
		return c.fail(ws.StatusInvalidFramePayloadData, "invalid UTF-8")
	}
	if !c.closing {
		c.h.Message(op == ws.OpText, msg)
	}
	return nil
}

// control handles a ping, a pong or a close frame.
func (c *conn) control(h ws.Header) error {
	p := make([]byte, h.Length) // at most 125 bytes
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	ws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		if !c.closing {
			return c.pong(p)
		}
	case ws.OpPong:
		if !c.closing {
			c.h.Pong()
		}
	case ws.OpClose:
		if c.closing { // the answer to ours
			return errHandshakeDone
		}
		if len(p) == 1 {
			return c.fail(ws.StatusProtocolError, "close frame of one byte")
		}
		code, reason := ws.ParseCloseFrameDataUnsafe(p)
		if code.Empty() {
			_ = c.Close(int(ws.StatusNormalClosure), "") // no code to echo
			return CloseError{}
		}
		if err := ws.CheckCloseFrameData(code, reason); err != nil || code >= 5000 {
			return c.fail(ws.StatusProtocolError, "invalid close frame")
		}
		_ = c.Close(int(code), "") // echo the code; the handshake is then over
		return CloseError{Code: int(code)}
	}
	return nil
}

// fail answers a violation with a close frame; what follows is skipped up
// to the peer's close frame.
func (c *conn) fail(code ws.StatusCode, reason string) error {
	c.failed = true
	if c.failure == nil {
		c.failure = &ViolationError{Code: int(code), Reason: reason}
	}
	c.msg, c.msgOp = nil, 0
	if c.closing {
		return errHandshakeDone // we said our last word already
	}
	c.closing = true
	return c.Close(int(code), reason)
}
