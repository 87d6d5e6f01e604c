package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
)

// The inbound side of a session. Browsers send little: pongs every ping
// interval and an ack per frame shown. Where the socket can be polled (plain
// TCP on Linux) no goroutine waits on it: the hub's poller starts a pass when
// it turns readable, the pass consumes pongs itself and hands any other frame
// to coder/websocket's Read, which reads one whole message, and the pass ends
// when nothing more is buffered. Elsewhere (TLS) a reader goroutine stays in
// coder/websocket's Read for the session's life.

// inbound is the connection coder/websocket gets from the hijack, so its
// buffered reader reads through here. A pass makes it non-blocking while it
// looks at the next frame, so a pass never waits on the network outside
// coder/websocket's Read.
type inbound struct {
	net.Conn
	rc       syscall.RawConn // nil when the socket cannot be polled
	pre      []byte          // what the client sent right behind its upgrade request
	nonblock bool            // set by a pass under session.rawMu
}

var (
	errWouldBlock = errors.New("hub: nothing more to read yet")
	errClosing    = errors.New("hub: session closing")
)

func (in *inbound) Read(p []byte) (int, error) {
	if len(in.pre) > 0 {
		n := copy(p, in.pre)
		in.pre = in.pre[n:]
		return n, nil
	}
	if in.nonblock {
		return readNow(in.rc, p)
	}
	return in.Conn.Read(p)
}

// readable starts a pass unless one runs or the session is closing; the
// poller calls it when the socket turns readable.
func (s *session) readable() {
	s.mu.Lock()
	if s.closed || s.reading {
		s.mu.Unlock()
		return
	}
	s.reading = true
	s.mu.Unlock()
	go s.pass()
}

// pass reads what the socket holds, then re-arms it with the poller.
func (s *session) pass() {
	for {
		err := s.peek()
		if err == nil {
			if s.readMessage() {
				continue
			}
			break
		}
		if errors.Is(err, errWouldBlock) {
			// reading is cleared before re-arming: readiness reported after
			// the re-arm must find no pass running, or it would be lost.
			s.mu.Lock()
			s.reading = false
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				if err := s.hub.poll.rearm(s.pollID, s.in.rc); err != nil {
					s.close(int(websocket.StatusNormalClosure), "")
				}
			}
			s.maybeEnd()
			return
		}
		if !errors.Is(err, errClosing) {
			s.hub.log.Debug("session read ended", zap.String("user", s.user), zap.Error(err))
		}
		s.close(int(websocket.StatusNormalClosure), "")
		break
	}
	s.mu.Lock()
	s.reading = false
	s.mu.Unlock()
	s.maybeEnd()
}

// Client frames are masked: a small unfragmented pong is its 2-byte header,
// the 4-byte mask and at most 125 bytes.
const (
	opPongFinal = 0x8A
	maskBit     = 0x80
	maxControl  = 125
)

// peek consumes the pongs at the head of the stream and reports what is
// next: nil when another frame begins, errWouldBlock when nothing more is
// buffered, errClosing once the session closes (the closer reads from then).
func (s *session) peek() error {
	s.rawMu.Lock()
	defer s.rawMu.Unlock()
	if s.isClosed() {
		return errClosing
	}
	s.in.nonblock = true
	defer func() { s.in.nonblock = false }()
	for {
		h, err := s.br.Peek(2)
		if err != nil {
			return err
		}
		s.pingSent.Store(0) // the peer is there
		if h[0] != opPongFinal || h[1]&maskBit == 0 || int(h[1]&^maskBit) > maxControl {
			return nil // coder/websocket reads it, and validates it
		}
		n := 6 + int(h[1]&^maskBit)
		if _, err := s.br.Peek(n); err != nil {
			return err
		}
		_, _ = s.br.Discard(n)
		if !s.allowFrame() {
			return errClosing
		}
		if s.br.Buffered() == 0 {
			return errWouldBlock // the re-arm reports whatever arrives next
		}
	}
}

// readMessage reads one message with coder/websocket and handles it; false
// when the socket ended.
func (s *session) readMessage() bool {
	typ, data, err := s.conn.Read(context.Background())
	if err != nil {
		if !isNormalClose(err) {
			s.hub.log.Debug("session read ended", zap.String("user", s.user), zap.Error(err))
		}
		s.close(int(websocket.StatusNormalClosure), "")
		return false
	}
	s.handle(typ, data)
	return true
}

// read is the reader goroutine of a socket that cannot be polled: it serves
// the inbound side until it ends, and its end is the session's end.
func (s *session) read() {
	for s.readMessage() {
	}
}

// handle takes one client message: acks only. An ack counts, and times the
// frame's "shown" stage, only for a frame written to this session lately, and
// once; any other (an old widget's after a reconnect, a repeat, a forgery) is
// ignored.
func (s *session) handle(typ websocket.MessageType, data []byte) {
	if !s.allowFrame() {
		return // the close handshake reads on
	}
	var ack event.Ack
	if typ != websocket.MessageText || json.Unmarshal(data, &ack) != nil || ack.Type != "ack" {
		s.close(event.CloseProtocol, "unreadable client frame")
		return
	}
	if id, ok := event.ParseID(ack.ID); ok && s.takeSent(id) {
		s.hub.metrics.acks.Inc()
		if ack.Unstyled {
			s.hub.metrics.acksUnstyled.Inc()
		}
		s.hub.metrics.observe("shown", id)
		return
	}
	s.hub.metrics.acksIgnored.Inc()
}

// takeSent reports whether id is one of the last frames written and not
// acked yet, and marks it acked.
func (s *session) takeSent(id event.ID) bool {
	k := ackKey(id)
	if k == 0 {
		return false
	}
	for i := range s.sent {
		if s.sent[i].CompareAndSwap(k, 0) {
			return true
		}
	}
	return false
}

// allowFrame counts one inbound frame against the session's limit (a
// generic cell rate algorithm: a token bucket in one word) and reports
// whether it is within; past it, the session is closed with
// event.ClosePolicy. It neither allocates nor waits.
func (s *session) allowFrame() bool {
	now := int64(time.Since(s.hub.epoch))
	for {
		at := s.inboundAt.Load()
		next := max(at, now) + s.hub.frameCost
		if next-now > s.hub.frameBudget {
			s.drop("flood", event.ClosePolicy, "too many frames")
			return false
		}
		if s.inboundAt.CompareAndSwap(at, next) {
			return true
		}
	}
}

// maybeEnd removes a polled session once it is closed, its close handshake
// is over and no pass runs; whichever of those comes last does it.
func (s *session) maybeEnd() {
	s.mu.Lock()
	end := s.pollID != 0 && s.closed && s.closeDone && !s.reading && !s.ended
	if end {
		s.ended = true
	}
	s.mu.Unlock()
	if end {
		s.hub.remove(s)
	}
}
