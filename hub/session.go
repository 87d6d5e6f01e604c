package hub

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/event"
)

// session is one browser socket. The handler goroutine writes (run); one
// reader goroutine reads acks, pongs and the close frame.
type session struct {
	hub      *Hub
	conn     *websocket.Conn
	user     string
	ident    auth.Identity
	resume   bool     // the client sent since=
	since    event.ID // guarded by run's goroutine
	last     event.ID // newest id written; guarded by run's goroutine
	queue    chan event.Message
	resync   chan struct{} // a pending catch-up from the log, at most one
	pingSlot uint8

	closeOnce sync.Once
	done      chan struct{} // closed by close
}

func newSession(h *Hub, conn *websocket.Conn, id auth.Identity, resume bool, since event.ID) *session {
	return &session{
		hub: h, conn: conn, user: id.Key, ident: id, resume: resume, since: since,
		queue: make(chan event.Message, h.cfg.QueueSize), pingSlot: randomSlot(),
		resync: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// enqueue offers m without blocking; a full queue closes the session, whose
// widget then resumes from its last id, so nothing is lost but the socket.
func (s *session) enqueue(m event.Message) {
	select {
	case s.queue <- m:
	default:
		s.drop("slow", event.CloseSlow, "too slow: reconnect and resume")
	}
}

// requestResync asks the writer to catch up from the log; see catchUp.
func (s *session) requestResync() {
	select {
	case s.resync <- struct{}{}:
	default: // one is pending already
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
	s.closeOnce.Do(func() {
		closed = true
		close(s.done)
		go s.conn.Close(websocket.StatusCode(code), reason)
	})
	return closed
}

func (s *session) run(ctx context.Context) {
	log := s.hub.log.With(zap.String("user", s.user))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if until := time.Until(s.ident.Expires); until > 0 {
		t := time.AfterFunc(until, func() { s.close(event.CloseTokenExpired, "token expired") })
		defer t.Stop()
	} else {
		s.close(event.CloseTokenExpired, "token expired")
		return
	}
	readDone := make(chan struct{})
	go func() { defer close(readDone); s.read(ctx, log) }()
	defer func() {
		// Whatever ended the session, close it and let the reader see the
		// close handshake through, so no goroutine outlives the session.
		s.close(event.CloseRestart, "session ended")
		<-readDone
	}()

	if err := s.hello(ctx); err != nil {
		log.Warn("session not started", zap.Error(err))
		s.close(event.CloseUnavailable, "try again")
		return
	}
	defer func() {
		_ = s.hub.sub.Unsubscribe(context.WithoutCancel(ctx), s.user)
	}()
	log.Debug("session started")
	for {
		select {
		case m := <-s.queue:
			if !s.last.Less(m.ID) {
				continue // already sent, in the snapshot or the replay
			}
			if err := s.write(ctx, m.Data); err != nil {
				s.close(event.CloseRestart, "write failed")
				return
			}
			s.last = m.ID
			s.hub.metrics.frames.Inc()
			s.hub.metrics.observe("written", m.ID)
		case <-s.resync:
			if err := s.catchUp(ctx); err != nil {
				log.Info("catch-up failed; the widget will reconnect", zap.Error(err))
				s.close(event.CloseUnavailable, "resync: reconnect")
				return
			}
		case <-s.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// errLogGap: the log no longer holds the session's last frame, so what was
// missed cannot be replayed in place.
var errLogGap = errors.New("hub: log no longer reaches the session's last frame")

// catchUp writes what the log holds after the last frame written: the
// frames published while this node's subscription was being re-established.
// When the log cannot say (it was lost with a Redis restart), the session is
// closed so the widget reconnects and gets a fresh hello.
func (s *session) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.hub.cfg.HelloTimeout)
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
		if err := s.write(ctx, m.Data); err != nil {
			return err
		}
		s.last = m.ID
		s.hub.metrics.frames.Inc()
	}
	return nil
}

// hello subscribes, reads the snapshot and writes hello and the missed
// frames. Live frames arriving meanwhile wait in the queue and are written
// after, skipping those the snapshot already covered.
func (s *session) hello(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.hub.cfg.HelloTimeout)
	defer cancel()
	if err := s.hub.sub.Subscribe(ctx, s.user); err != nil {
		return err
	}
	snap, err := s.hub.sub.Snapshot(ctx, s.user, s.since)
	if err != nil {
		_ = s.hub.sub.Unsubscribe(context.WithoutCancel(ctx), s.user)
		return err
	}
	hello := event.Hello{Type: event.FrameHello, User: s.user, Active: snap.Active, Last: snap.Last.String()}
	if snap.Last.IsZero() {
		hello.Last = ""
	}
	if s.resume {
		rec := snap.Recovered
		hello.Recovered = &rec
		s.hub.metrics.resumes.WithLabelValues(map[bool]string{true: "hit", false: "miss"}[rec]).Inc()
	}
	if err := s.write(ctx, event.Encode(hello)); err != nil {
		return err
	}
	s.last = snap.Last
	for _, m := range snap.Missed {
		if err := s.write(ctx, m.Data); err != nil {
			return err
		}
		if s.last.Less(m.ID) {
			s.last = m.ID
		}
	}
	return nil
}

func (s *session) write(ctx context.Context, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.hub.cfg.WriteTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, data)
}

// read serves the socket's inbound side: acks, and the control frames that
// coder/websocket handles while a read is pending (pongs, close).
func (s *session) read(ctx context.Context, log *zap.Logger) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			if !isNormalClose(err) {
				log.Debug("session read ended", zap.Error(err))
			}
			s.close(int(websocket.StatusNormalClosure), "")
			return
		}
		var ack event.Ack
		if typ != websocket.MessageText || json.Unmarshal(data, &ack) != nil || ack.Type != "ack" {
			s.close(event.CloseProtocol, "unreadable client frame")
			return
		}
		s.hub.metrics.acks.Inc()
		if id, ok := event.ParseID(ack.ID); ok {
			s.hub.metrics.observe("shown", id)
		}
	}
}

func (s *session) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), s.hub.cfg.WriteTimeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		s.drop("ping", event.CloseRestart, "ping timeout")
	}
}
