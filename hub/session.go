package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/hub/transport"
	"github.com/callpop/callpop/tenant"
)

// An idle session costs a few KiB and no goroutine: the HTTP handler returns
// after hello, frames are written by short-lived flush goroutines only while
// there is something to write, and the transport reads only when the socket
// turns readable (see the transport package).
const (
	// sentSlots live frames per session may be acked: a widget acks a frame
	// as it shows it, one round trip later, and a session gets a few frames a
	// minute. Eight words keep the session struct in a small size class.
	sentSlots = 8
)

// session is one browser socket; its Handler methods (inbound.go) take what
// the browser sends.
type session struct {
	hub      *Hub
	conn     transport.Conn
	user     string         // the routing key: tenant.Key(tenant, user key)
	tenant   *tenantMetrics // this session's tenant's series (shared, never nil)
	expires  time.Time
	pingSlot uint8
	sentNext uint8        // the slot of sent the next frame takes; touched only by the writer of the moment
	pingSent atomic.Int64 // unix nanoseconds of the ping not answered yet; 0: none

	// inboundAt is the inbound limit's clock (see allowFrame): when, in
	// nanoseconds since the hub's epoch, the frames counted so far are paid
	// for.
	inboundAt atomic.Int64
	// sent holds the last live frames written, as ackKeys, 0 once acked:
	// only their acks are taken (see takeSent). Atomic because the writer
	// fills slots while the reader empties them.
	sent [sentSlots]atomic.Uint64
	last event.ID // newest id written; touched only by the writer of the moment

	mu      sync.Mutex      // guards the fields below
	state   state           // see state.go; changed only by transition
	pending []event.Message // live frames waiting to be written, oldest first
	writing bool            // hello or a flush goroutine owns the socket's writes
	resync  bool            // a catch-up from the log is due
	subbed  bool            // Subscribe succeeded: remove must Unsubscribe
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
	if s.state >= closing {
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
	if s.state >= closing {
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

// batches holds the slices flush gathers a batch's frames in: one per
// flush would be an allocation per frame written under fan-out.
var batches = sync.Pool{New: func() any { return new([][]byte) }}

// flush writes what is pending, then returns: no goroutine waits on an
// idle session. A batch of frames leaves in one socket write.
func (s *session) flush() {
	kept := batches.Get().(*[][]byte)
	frames := *kept
	defer func() {
		clear(frames[:cap(frames)]) // the pool keeps no frame alive
		*kept = frames[:0]
		batches.Put(kept)
	}()
	for {
		s.mu.Lock()
		if s.state != live || (len(s.pending) == 0 && !s.resync) {
			s.writing = false
			s.pending = nil // an idle session holds no buffer
			s.mu.Unlock()
			return
		}
		batch, resync := s.pending, s.resync
		s.pending, s.resync = nil, false
		s.mu.Unlock()

		frames = frames[:0]
		if resync {
			var err error
			if frames, err = s.catchUp(frames); err != nil {
				s.hub.log.Info("catch-up failed; the widget will reconnect", zap.String("user", s.user), zap.Error(err))
				s.close(event.CloseUnavailable, "resync: reconnect")
				continue
			}
		}
		first := s.last
		for _, m := range batch {
			if !s.last.Less(m.ID) {
				continue // already sent, in the snapshot, the replay or a catch-up
			}
			s.noteSent(m.ID) // before the write: the ack may come back before it returns
			frames = append(frames, m.Data)
			s.last = m.ID
		}
		if len(frames) == 0 {
			continue
		}
		if err := s.conn.WriteText(frames...); err != nil {
			s.writeFailed(err)
			continue
		}
		s.hub.metrics.frames.Add(float64(len(frames)))
		s.tenant.frames.Add(float64(len(frames)))
		for _, m := range batch {
			if first.Less(m.ID) && !s.last.Less(m.ID) {
				first = m.ID
				if d := s.hub.metrics.observe("written", m.ID); d >= 0 {
					s.tenant.written.Observe(d)
				}
			}
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
// the close frame is written in its own goroutine so callers (the broker's,
// the ping schedule's) never wait on the network, and the transport
// finishes the handshake.
func (s *session) close(code int, reason string) bool {
	s.mu.Lock()
	ok := s.transition(evClose)
	if ok {
		s.pending = nil
	}
	s.mu.Unlock()
	if ok {
		go s.conn.Close(code, reason)
	}
	return ok
}

// writeFailed drops the socket after a write failed; ErrClosed is no
// failure: the transport is closing the socket itself.
func (s *session) writeFailed(err error) {
	if errors.Is(err, transport.ErrClosed) {
		return
	}
	s.mu.Lock()
	ok := s.transition(evWriteFailed)
	if ok {
		s.pending = nil
	}
	s.mu.Unlock()
	if ok {
		s.conn.CloseNow()
	}
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
	gone := s.state >= closing // and remove, if it ran, saw no subscription
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
	_, login := tenant.Split(s.user) // the user as the PBX knows them, without the tenant
	hello := event.Hello{Type: event.FrameHello, User: login, Active: snap.Active}
	if !snap.Last.IsZero() {
		hello.Last = snap.Last.String()
	}
	if resume {
		rec := snap.Recovered
		hello.Recovered = &rec
		s.hub.metrics.resumes.WithLabelValues(map[bool]string{true: "hit", false: "miss"}[rec]).Inc()
	}
	frames := make([][]byte, 0, 1+len(snap.Missed)) // hello and the replay leave together
	frames = append(frames, event.Encode(hello))
	s.last = snap.Last
	for _, m := range snap.Missed {
		frames = append(frames, m.Data)
		if s.last.Less(m.ID) {
			s.last = m.ID
		}
	}
	return s.conn.WriteText(frames...)
}

// started hands the socket's writes over to flushes once hello is out.
func (s *session) started() {
	s.mu.Lock()
	if !s.transition(evHelloWritten) { // closed meanwhile
		s.mu.Unlock()
		return
	}
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

// catchUp appends to frames what the log holds after the last frame
// written: the frames published while this node's subscription was being
// re-established; flush writes them before its batch. When the log cannot
// say (it was lost with a Redis restart), the session is closed so the widget
// reconnects and gets a fresh hello.
func (s *session) catchUp(frames [][]byte) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.hub.cfg.HelloTimeout)
	defer cancel()
	snap, err := s.hub.sub.Snapshot(ctx, s.user, s.last)
	if err != nil {
		return frames, err
	}
	if s.last.IsZero() {
		if snap.Last.IsZero() {
			return frames, nil // nothing ever happened for this user
		}
		return frames, errLogGap
	}
	if !snap.Recovered {
		return frames, errLogGap
	}
	for _, m := range snap.Missed {
		if !s.last.Less(m.ID) {
			continue
		}
		s.noteSent(m.ID) // widgets show a catch-up's frames, and ack them
		frames = append(frames, m.Data)
		s.last = m.ID
	}
	return frames, nil
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

// ping sends a ping; the pong clears pingSent, and the ping schedule closes
// sessions whose pong is overdue.
func (s *session) ping() {
	s.pingSent.CompareAndSwap(0, time.Now().UnixNano())
	if err := s.conn.Ping(); err != nil {
		s.drop("ping", event.CloseRestart, "ping failed")
	}
}
