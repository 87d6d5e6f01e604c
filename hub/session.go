package hub

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
)

// An idle session costs a few KiB and no goroutine: the HTTP handler returns
// after hello, frames are written by short-lived flush goroutines only while
// there is something to write, the hub's poller reads only when the socket
// turns readable (see inbound.go), and the socket's buffers are small
// (sessions carry a few small frames a minute).
const (
	readBufferSize  = 256 // inbound frames are acks of ~40 bytes
	writeBufferSize = 64  // frames gather in the coalescer, not here: this only joins a frame's header and body
	// sentSlots live frames per session may be acked: a widget acks a frame
	// as it shows it, one round trip later, and a session gets a few frames a
	// minute. Eight words keep the session struct in its 256-byte size class.
	sentSlots = 8
)

// session is one browser socket.
type session struct {
	hub      *Hub
	conn     *websocket.Conn
	out      *coalescer    // under conn's writes: batches leave in one system call
	in       *inbound      // under conn's reads
	br       *bufio.Reader // conn's buffered reader; a pass peeks at it between messages
	polled   bool          // the hub's poller watches the socket: no reader goroutine
	user     string
	expires  time.Time
	pingSlot uint8
	sentNext uint8        // the slot of sent the next frame takes; touched only by the writer of the moment
	pingSent atomic.Int64 // unix nanoseconds of the ping not answered yet; 0: none

	// inboundAt is the inbound limit's clock (see allowFrame): when, in
	// nanoseconds since the hub's epoch, the frames counted so far are paid
	// for. The reader counts; so may the closer, reading the close handshake.
	inboundAt atomic.Int64
	// sent holds the last live frames written, as ackKeys, 0 once acked:
	// only their acks are taken (see takeSent). Atomic because the writer
	// fills slots while the reader empties them.
	sent [sentSlots]atomic.Uint64

	// rawMu is held by whoever reads the socket outside coder/websocket's
	// Read (a pass peeking, the closer's handshake), so they never overlap.
	rawMu sync.Mutex

	mu        sync.Mutex      // guards the fields below
	pending   []event.Message // live frames waiting to be written, oldest first
	writing   bool            // hello or a flush goroutine owns the socket's writes
	resync    bool            // a catch-up from the log is due
	closed    bool
	subbed    bool     // Subscribe succeeded: remove must Unsubscribe
	last      event.ID // newest id written; touched only by the writer of the moment
	pollID    uint64   // the poller's name for the socket
	reading   bool     // a pass runs (or the handler still sets the session up)
	closeDone bool     // the close handshake is over
	ended     bool     // removed from the hub
}

func (s *session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *session) subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subbed
}

// enqueue offers m without blocking; a session whose backlog reaches the
// queue size is closed, and its widget resumes from its last id, so nothing
// is lost but the socket.
func (s *session) enqueue(m event.Message) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.pending) >= s.hub.cfg.QueueSize {
		s.mu.Unlock()
		s.drop("slow", event.CloseSlow, "too slow: reconnect and resume")
		return
	}
	s.pending = append(s.pending, m)
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

// requestResync asks for a catch-up from the log; see catchUp.
func (s *session) requestResync() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.resync = true
	start := !s.writing
	s.writing = true
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

// flush writes what is pending, then returns: no goroutine waits on an
// idle session.
func (s *session) flush() {
	for {
		s.mu.Lock()
		if s.closed || (len(s.pending) == 0 && !s.resync) {
			s.writing = false
			s.pending = nil // an idle session holds no buffer
			s.mu.Unlock()
			return
		}
		batch, resync := s.pending, s.resync
		s.pending, s.resync = nil, false
		s.mu.Unlock()

		if resync {
			if err := s.catchUp(); err != nil {
				s.hub.log.Info("catch-up failed; the widget will reconnect", zap.String("user", s.user), zap.Error(err))
				s.close(event.CloseUnavailable, "resync: reconnect")
				continue
			}
		}
		s.out.holdWrites()
		for _, m := range batch {
			if !s.last.Less(m.ID) {
				continue // already sent, in the snapshot, the replay or a catch-up
			}
			s.noteSent(m.ID) // before the write: the ack may come back before it returns
			if err := s.write(m.Data); err != nil {
				s.close(event.CloseRestart, "write failed")
				break
			}
			s.last = m.ID
			s.hub.metrics.frames.Inc()
			s.hub.metrics.observe("written", m.ID)
		}
		if err := s.out.release(); err != nil {
			s.conn.CloseNow() // the socket is stuck or gone; the reader cleans up
		}
	}
}

// drop closes the session for a fault of the peer's, counted once by label.
func (s *session) drop(label string, code int, reason string) {
	if s.close(code, reason) {
		s.hub.metrics.dropped.WithLabelValues(label).Inc()
	}
}

// close ends the session with code and reports whether this call did it;
// the close handshake runs in its own goroutine so callers (the broker's, a
// timer's) never wait on the network.
func (s *session) close(code int, reason string) (closed bool) {
	s.mu.Lock()
	if !s.closed {
		s.closed, closed = true, true
		s.pending = nil
	}
	s.mu.Unlock()
	if closed {
		s.out.close() // no data frame after the close frame
		go s.closeConn(code, reason)
	}
	return closed
}

// closeConn runs the close handshake. On a polled socket no pass reads
// meanwhile (rawMu), coder/websocket reads the peer's answer itself, and the
// session ends when the handshake is over; a reader goroutine sees the end
// on its own.
func (s *session) closeConn(code int, reason string) {
	s.rawMu.Lock()
	_ = s.conn.Close(websocket.StatusCode(code), reason)
	s.rawMu.Unlock()
	s.mu.Lock()
	s.closeDone = true
	s.mu.Unlock()
	s.maybeEnd()
}

// hello subscribes, reads the snapshot and writes hello and the missed
// frames, while s.writing keeps flushes away; live frames arriving meanwhile
// wait in pending and are written after, skipping what the snapshot covered.
func (s *session) hello(ctx context.Context, resume bool, since event.ID) error {
	ctx, cancel := context.WithTimeout(ctx, s.hub.cfg.HelloTimeout)
	defer cancel()
	if err := s.hub.sub.Subscribe(ctx, s.user); err != nil {
		return err
	}
	s.mu.Lock()
	gone := s.closed // the reader ended meanwhile, and remove saw no subscription
	s.subbed = !gone
	s.mu.Unlock()
	if gone {
		_ = s.hub.sub.Unsubscribe(context.WithoutCancel(ctx), s.user)
		return errors.New("hub: session ended during hello")
	}
	snap, err := s.hub.sub.Snapshot(ctx, s.user, since)
	if err != nil {
		return err
	}
	hello := event.Hello{Type: event.FrameHello, User: s.user, Active: snap.Active}
	if !snap.Last.IsZero() {
		hello.Last = snap.Last.String()
	}
	if resume {
		rec := snap.Recovered
		hello.Recovered = &rec
		s.hub.metrics.resumes.WithLabelValues(map[bool]string{true: "hit", false: "miss"}[rec]).Inc()
	}
	// Writes get a context of their own, not one derived from the request's:
	// coder/websocket keeps the last write's context until the next write,
	// and an idle session would hold the whole request with it.
	s.out.holdWrites() // hello and the replay leave together
	if err := s.write(event.Encode(hello)); err != nil {
		_ = s.out.release()
		return err
	}
	s.last = snap.Last
	for _, m := range snap.Missed {
		if err := s.write(m.Data); err != nil {
			_ = s.out.release()
			return err
		}
		if s.last.Less(m.ID) {
			s.last = m.ID
		}
	}
	return s.out.release()
}

// started hands the socket's writes over to flushes once hello is out.
func (s *session) started() {
	s.mu.Lock()
	start := len(s.pending) > 0 || s.resync
	s.writing = start
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

// errLogGap: the log no longer holds the session's last frame, so what was
// missed cannot be replayed in place.
var errLogGap = errors.New("hub: log no longer reaches the session's last frame")

// catchUp writes what the log holds after the last frame written: the
// frames published while this node's subscription was being re-established.
// When the log cannot say (it was lost with a Redis restart), the session is
// closed so the widget reconnects and gets a fresh hello.
func (s *session) catchUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.hub.cfg.HelloTimeout)
	defer cancel()
	snap, err := s.hub.sub.Snapshot(ctx, s.user, s.last)
	if err != nil {
		return err
	}
	if s.last.IsZero() {
		if snap.Last.IsZero() {
			return nil // nothing ever happened for this user
		}
		return errLogGap
	}
	if !snap.Recovered {
		return errLogGap
	}
	for _, m := range snap.Missed {
		if !s.last.Less(m.ID) {
			continue
		}
		s.noteSent(m.ID) // widgets show a catch-up's frames, and ack them
		if err := s.write(m.Data); err != nil {
			return err
		}
		s.last = m.ID
		s.hub.metrics.frames.Inc()
	}
	return nil
}

// noteSent records that the live frame id is about to be written, so its
// ack will be taken; the oldest of sentSlots gives way. Frames replayed after
// hello are not recorded: widgets do not show them as new cards (widget.js
// onFrame), so they send no ack for them.
func (s *session) noteSent(id event.ID) {
	if k := ackKey(id); k != 0 {
		s.sent[s.sentNext%sentSlots].Store(k)
		s.sentNext++
	}
}

// ackKey packs id into one word for sent; 0, never stored, for an id it
// cannot hold (a time past the year 10889, more than 65,535 events for one
// user in one millisecond) or the zero ID.
func ackKey(id event.ID) uint64 {
	if id.MS == 0 || id.MS >= 1<<48 || id.Seq >= 1<<16 {
		return 0
	}
	return id.MS<<16 | id.Seq
}

// write writes one text frame, through the coalescer itself unless
// coder/websocket is in the middle of a frame of its own. No deadline here:
// the coalescer bounds every socket write.
func (s *session) write(data []byte) error {
	err := s.out.text(data)
	if errors.Is(err, errMidFrame) {
		err = s.conn.Write(context.Background(), websocket.MessageText, data)
	}
	return err
}

// ping sends a ping between two frames; the pong clears pingSent, and the
// ping schedule closes sessions whose pong is overdue.
func (s *session) ping() {
	s.pingSent.CompareAndSwap(0, time.Now().UnixNano())
	if err := s.out.ping(); err != nil {
		s.drop("ping", event.CloseRestart, "ping failed")
	}
}

// smallBuffers hands coder/websocket a hijacked connection with small
// buffers instead of net/http's 4 KiB pair, which would otherwise stay with
// every idle session for its lifetime, and puts the session's coalescer
// under the write side.
type smallBuffers struct {
	http.ResponseWriter
	writeTimeout time.Duration
	out          *coalescer    // set by Hijack
	in           *inbound      // set by Hijack
	br           *bufio.Reader // set by Hijack
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.in = &inbound{Conn: conn}
	if n := brw.Reader.Buffered(); n > 0 { // bytes the client sent after its request
		b, _ := brw.Reader.Peek(n)
		w.in.pre = bytes.Clone(b)
	}
	if sc, ok := conn.(syscall.Conn); ok { // plain TCP; TLS is not: its records hide readiness
		if rc, err := sc.SyscallConn(); err == nil {
			w.in.rc = rc
		}
	}
	w.out = &coalescer{conn: conn, timeout: w.writeTimeout}
	w.br = bufio.NewReaderSize(w.in, readBufferSize) // coder/websocket re-points it at w.in
	return w.in, bufio.NewReadWriter(w.br, bufio.NewWriterSize(w.out, writeBufferSize)), nil
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
