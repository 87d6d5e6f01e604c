package hub

import (
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/hub/transport"
)

// The inbound side of a session: the transport.Handler the session's
// connection reports to, from one goroutine at a time.

var _ transport.Handler = (*session)(nil)

// Frame counts every frame the browser sends against the inbound limit; any
// frame also shows the peer is there.
func (s *session) Frame() {
	s.pingSent.Store(0)
	s.allowFrame()
}

// Pong answers the last ping.
func (s *session) Pong() { s.pingSent.Store(0) }

// Ended removes the session from the hub: its connection is closed.
func (s *session) Ended(err error) {
	s.mu.Lock()
	ok := s.transition(evEnded)
	s.pending = nil
	s.mu.Unlock()
	if !ok {
		return
	}
	if err != nil {
		if ce := s.hub.log.Check(zap.DebugLevel, "session ended"); ce != nil {
			ce.Write(zap.String("user", s.user), zap.Error(err))
		}
	}
	s.hub.remove(s)
}

// Message takes one client message: acks only. An ack counts, and times the
// frame's "shown" stage, only for a frame written to this session lately, and
// once; any other (an old widget's after a reconnect, a repeat, a forgery) is
// ignored.
func (s *session) Message(text bool, data []byte) {
	var ack event.Ack
	if !text || json.Unmarshal(data, &ack) != nil || ack.Type != "ack" {
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
