package hub

// A session's lifecycle. Every change of it goes through session.transition,
// under session.mu, by the table in next:
//
//	helloing --helloWritten--> live
//	helloing, live --close, writeFailed--> closing
//	helloing, live, closing --ended--> closed
//
// Anything else leaves the state as it is and reports false: a second close
// is not a close, a hello finished after a close starts no flush, an end is
// reported once.

// state is where a session is in its life.
type state uint8

const (
	// helloing: upgraded and registered; the handler subscribes and writes
	// hello and the replay, and owns the socket's writes. Live frames wait
	// in pending.
	helloing state = iota
	// live: hello is out; flushes write live frames as they come.
	live
	// closing: the server sent (or is sending) its close frame; nothing more
	// is written or taken, and the transport finishes the handshake.
	closing
	// closed: the transport ended (the peer closed, the handshake finished,
	// the socket failed); the session is out of the hub.
	closed
)

var stateNames = [...]string{"helloing", "live", "closing", "closed"}

func (s state) String() string { return stateNames[s] }

// change is what moves a session along.
type change uint8

const (
	// evHelloWritten: hello and the replay are written.
	evHelloWritten change = iota
	// evClose: the server closes the session with a code (slow, flood, ping
	// timeout, token expiry, shutdown, a failed hello or catch-up, an
	// unreadable client frame).
	evClose
	// evWriteFailed: a socket write failed; the socket is dropped without a
	// handshake.
	evWriteFailed
	// evEnded: the transport ended the connection.
	evEnded
)

var eventNames = [...]string{"helloWritten", "close", "writeFailed", "ended"}

func (e change) String() string { return eventNames[e] }

// next is the transition table: the state after ev in s, and whether ev
// applies to s at all (if not, s stays).
func next(s state, ev change) (state, bool) {
	switch ev {
	case evHelloWritten:
		if s == helloing {
			return live, true
		}
	case evClose, evWriteFailed:
		if s == helloing || s == live {
			return closing, true
		}
	case evEnded:
		if s != closed {
			return closed, true
		}
	}
	return s, false
}

// transition applies ev; the caller holds s.mu.
func (s *session) transition(ev change) bool {
	to, ok := next(s.state, ev)
	s.state = to
	return ok
}
