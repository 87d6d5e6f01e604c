package transport_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/hub/transport"
)

// The cases of the Autobahn test suite that matter for a server whose
// clients send small acks: fragmentation (5.x), control frames (2.x, 5.x),
// the close handshake (7.x), UTF-8 (6.x), reserved bits and opcodes (3.x,
// 4.x), limits (9.x). Each runs over real loopback TCP with a raw client
// that writes exactly the bytes of the case, once with the socket polled and
// once with a reader goroutine (TLS, other systems).

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is the Handler under test: it keeps what the transport reports.
type recorder struct {
	frames   atomic.Int64
	pongs    atomic.Int64
	messages chan message
	ended    chan error
}

type message struct {
	text bool
	data string
}

func newRecorder() *recorder {
	return &recorder{messages: make(chan message, 64), ended: make(chan error, 2)}
}

func (r *recorder) Frame()                      { r.frames.Add(1) }
func (r *recorder) Pong()                       { r.pongs.Add(1) }
func (r *recorder) Message(text bool, p []byte) { r.messages <- message{text, string(p)} }
func (r *recorder) Ended(err error)             { r.ended <- err }

// endedWith waits for Ended and returns its error; a second Ended fails.
func (r *recorder) endedWith(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-r.ended:
		select {
		case <-r.ended:
			tb.Fatal("Ended called twice")
		case <-time.After(50 * time.Millisecond):
		}
		return err
	case <-time.After(5 * time.Second):
		tb.Fatal("Ended never called")
		return nil
	}
}

func (r *recorder) message(tb testing.TB) message {
	tb.Helper()
	select {
	case m := <-r.messages:
		return m
	case <-time.After(5 * time.Second):
		tb.Fatal("no message")
		return message{}
	}
}

// peer is the raw client of a case.
type peer struct {
	tb   testing.TB
	nc   net.Conn
	br   *bufio.Reader
	conn transport.Conn // the server's side
	rec  *recorder
}

// modes runs f with a polled server and with a reader goroutine.
func modes(t *testing.T, f func(t *testing.T, srv *transport.Server)) {
	t.Run("polled", func(t *testing.T) {
		t.Parallel()
		p, err := transport.NewPoller(zaptest.NewLogger(t))
		if err != nil {
			t.Skip(err)
		}
		t.Cleanup(p.Stop)
		f(t, &transport.Server{ReadLimit: 1024, WriteTimeout: 2 * time.Second, Poller: p})
	})
	t.Run("goroutine", func(t *testing.T) {
		t.Parallel()
		f(t, &transport.Server{ReadLimit: 1024, WriteTimeout: 2 * time.Second})
	})
}

// dial upgrades a raw connection to srv; early is sent right behind the
// upgrade request, in the same write.
func dial(t *testing.T, srv *transport.Server, early ...byte) *peer {
	t.Helper()
	rec := newRecorder()
	conns := make(chan transport.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := srv.Upgrade(w, r)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		c.Start(rec)
		conns <- c
	}))
	t.Cleanup(hs.Close)
	nc, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	p := &peer{tb: t, nc: nc, br: br, conn: <-conns, rec: rec}
	t.Cleanup(func() { p.conn.CloseNow(); rec.endedWith(t) })
	return p
}

// frame encodes a client frame: b0 is FIN, RSV and the opcode; masked
// unless told otherwise.
func frame(b0 byte, payload []byte, unmasked ...bool) []byte {
	masked := len(unmasked) == 0 || !unmasked[0]
	b := []byte{b0, 0}
	switch n := len(payload); {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	p := bytes.Clone(payload)
	if masked {
		b[1] |= 0x80
		mask := [4]byte{0x12, 0x34, 0x56, 0x78}
		b = append(b, mask[:]...)
		ws.Cipher(p, mask, 0)
	}
	return append(b, p...)
}

const (
	fin    = 0x80
	opCont = 0x0
	opText = 0x1
	opBin  = 0x2
	opCls  = 0x8
	opPing = 0x9
	opPong = 0xA
)

func closeBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func (p *peer) send(frames ...[]byte) {
	p.tb.Helper()
	if _, err := p.nc.Write(bytes.Join(frames, nil)); err != nil {
		p.tb.Fatal(err)
	}
}

// next reads the server's next frame; it must be unmasked and final.
func (p *peer) next() (ws.OpCode, []byte) {
	p.tb.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(p.br)
	if err != nil {
		p.tb.Fatalf("reading a frame: %v", err)
	}
	if h.Masked || !h.Fin || h.Rsv != 0 {
		p.tb.Fatalf("server frame %+v: masked, not final or with reserved bits", h)
	}
	b := make([]byte, h.Length)
	if _, err := io.ReadFull(p.br, b); err != nil {
		p.tb.Fatal(err)
	}
	return h.OpCode, b
}

// closed expects the server's close frame with code, answers it, and
// expects the server to close the connection.
func (p *peer) closed(code int) {
	p.tb.Helper()
	op, b := p.next()
	if op != ws.OpClose || len(b) < 2 {
		p.tb.Fatalf("got opcode %v % x, want a close frame", op, b)
	}
	if got := int(binary.BigEndian.Uint16(b)); got != code {
		p.tb.Fatalf("closed with %d %q, want %d", got, b[2:], code)
	}
	p.send(frame(fin|opCls, b[:2]))
	p.eof()
}

// eof expects the server to close the TCP connection.
func (p *peer) eof() {
	p.tb.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, p.br); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		p.tb.Fatalf("after %d bytes: %v, want the server's end of the stream", n, err)
	}
}

func TestTextMessagesAreDelivered(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		p.send(frame(fin|opText, []byte("héllo")), frame(fin|opText, nil), frame(fin|opBin, []byte{0, 1}))
		for _, want := range []message{{true, "héllo"}, {true, ""}, {false, "\x00\x01"}} {
			if m := p.rec.message(t); m != want {
				t.Fatalf("got %+v, want %+v", m, want)
			}
		}
		if n := p.rec.frames.Load(); n != 3 {
			t.Fatalf("Frame called %d times, want 3", n)
		}
	})
}

// Autobahn 5.x: a text message in fragments is delivered whole.
func TestFragmentedMessageIsReassembled(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		p.send(frame(opText, []byte("frag")), frame(opCont, nil), frame(opCont, []byte("men")), frame(fin|opCont, []byte("ted")))
		if m := p.rec.message(t); m != (message{true, "fragmented"}) {
			t.Fatalf("got %+v", m)
		}
		// the fragments may come in separate packets, too
		p.send(frame(opText, []byte("a")))
		time.Sleep(20 * time.Millisecond) // a pass ends in between (polled)
		p.send(frame(fin|opCont, []byte("b")))
		if m := p.rec.message(t); m != (message{true, "ab"}) {
			t.Fatalf("got %+v", m)
		}
	})
}

// Autobahn 5.6–5.9: pings and pongs between the fragments of a message are
// answered and reported, and the message is still delivered whole.
func TestControlFramesInterleavedInAFragmentedMessage(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		p.send(frame(opText, []byte("fra")), frame(fin|opPing, []byte("ping!")), frame(fin|opPong, nil), frame(fin|opCont, []byte("gment")))
		if op, b := p.next(); op != ws.OpPong || string(b) != "ping!" {
			t.Fatalf("got %v %q, want the pong", op, b)
		}
		if m := p.rec.message(t); m != (message{true, "fragment"}) {
			t.Fatalf("got %+v", m)
		}
		if n := p.rec.pongs.Load(); n != 1 {
			t.Fatalf("%d pongs reported, want 1", n)
		}
	})
}

// Autobahn 2.1–2.4: a ping's pong echoes its payload, up to 125 bytes.
func TestPingIsAnsweredWithItsPayload(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		for _, payload := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0xfe}, 125)} {
			p.send(frame(fin|opPing, payload))
			if op, b := p.next(); op != ws.OpPong || !bytes.Equal(b, payload) {
				t.Fatalf("got %v % x, want a pong of % x", op, b, payload)
			}
		}
	})
}

// Autobahn 7.1, 7.3: the server echoes the peer's close code, then closes
// the connection; Ended reports the code.
func TestPeersCloseIsEchoed(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		p.send(frame(fin|opCls, closeBody(4321, "bye")))
		if op, b := p.next(); op != ws.OpClose || !bytes.Equal(b, closeBody(4321, "")) {
			t.Fatalf("got %v % x, want a close echoing 4321", op, b)
		}
		p.eof()
		var ce transport.CloseError
		if err := p.rec.endedWith(t); !errors.As(err, &ce) || ce.Code != 4321 {
			t.Fatalf("Ended(%v), want CloseError 4321", err)
		}
		p.rec.ended <- nil // for the cleanup
	})
}

// Autobahn 7.3.1: a close without a code is answered with 1000.
func TestEmptyCloseIsAnsweredWithNormalClosure(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		p.send(frame(fin|opCls, nil))
		if op, b := p.next(); op != ws.OpClose || !bytes.Equal(b, closeBody(1000, "")) {
			t.Fatalf("got %v % x, want close 1000", op, b)
		}
		p.eof()
	})
}

// The server's close: its frame carries code and reason; nothing is written
// after it, data frames that cross it are not delivered, and the peer's
// answer ends the connection with a nil error.
func TestServerCloseHandshake(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		if err := p.conn.Close(4000, "too slow"); err != nil {
			t.Fatal(err)
		}
		if err := p.conn.WriteText([]byte("late")); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("WriteText after Close: %v, want ErrClosed", err)
		}
		if err := p.conn.Ping(); err != nil {
			t.Fatal(err)
		}
		_ = p.conn.Close(4001, "again") // no second close frame
		op, b := p.next()
		if op != ws.OpClose || !bytes.Equal(b, closeBody(4000, "too slow")) {
			t.Fatalf("got %v %q, want close 4000", op, b)
		}
		p.send(frame(fin|opText, []byte("crossed")), frame(fin|opCls, b[:2]))
		p.eof()
		if err := p.rec.endedWith(t); err != nil {
			t.Fatalf("Ended(%v) after a clean handshake", err)
		}
		p.rec.ended <- nil
		if len(p.rec.messages) != 0 {
			t.Fatal("a message that crossed the close frame was delivered")
		}
	})
}

// A peer that never answers the close frame is cut off after the write
// timeout.
func TestUnansweredCloseTimesOut(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		srv.WriteTimeout = 200 * time.Millisecond
		p := dial(t, srv)
		_ = p.conn.Close(1012, "restart")
		if err := p.rec.endedWith(t); err == nil {
			t.Fatal("Ended(nil) without the peer's answer")
		}
		p.rec.ended <- nil
	})
}

// violations lists frames a server must refuse, with the close code.
var violations = []struct {
	name   string
	frames [][]byte
	code   int
}{
	// Autobahn 7.9.x: codes never to be sent in a close frame.
	{"CloseCode999", [][]byte{frame(fin|opCls, closeBody(999, ""))}, 1002},
	{"CloseCode1005", [][]byte{frame(fin|opCls, closeBody(1005, ""))}, 1002},
	{"CloseCode1006", [][]byte{frame(fin|opCls, closeBody(1006, ""))}, 1002},
	{"CloseCode1016", [][]byte{frame(fin|opCls, closeBody(1016, ""))}, 1002},
	{"CloseCode5000", [][]byte{frame(fin|opCls, closeBody(5000, ""))}, 1002},
	{"CloseCode65535", [][]byte{frame(fin|opCls, closeBody(65535, ""))}, 1002},
	{"CloseOfOneByte", [][]byte{frame(fin|opCls, []byte{3})}, 1002},                           // 7.3.2
	{"CloseReasonNotUTF8", [][]byte{frame(fin|opCls, closeBody(1000, "\xce\xba\xe1"))}, 1002}, // 7.5.1
	// Autobahn 2.5, 5.1–5.2: control frames of more than 125 bytes, or in fragments.
	{"PingOf126Bytes", [][]byte{frame(fin|opPing, make([]byte, 126))}, 1002},
	{"FragmentedPing", [][]byte{frame(opPing, []byte("a")), frame(fin|opCont, []byte("b"))}, 1002},
	// RFC 6455 5.1: client frames are masked.
	{"UnmaskedFrame", [][]byte{frame(fin|opText, []byte("hi"), true)}, 1002},
	// Autobahn 3.x: reserved bits without an extension.
	{"RSV1", [][]byte{frame(fin|0x40|opText, []byte("hi"))}, 1002},
	{"RSV3OnPing", [][]byte{frame(fin|0x10|opPing, nil)}, 1002},
	// Autobahn 4.x: reserved opcodes.
	{"ReservedDataOpcode", [][]byte{frame(fin|0x3, nil)}, 1002},
	{"ReservedControlOpcode", [][]byte{frame(fin|0xB, nil)}, 1002},
	// Autobahn 5.3–5.5, 5.18: continuation with nothing to continue, a new message inside one.
	{"ContinuationFirst", [][]byte{frame(fin|opCont, []byte("x"))}, 1002},
	{"TextInsideAFragmentedText", [][]byte{frame(opText, []byte("a")), frame(fin|opText, []byte("b"))}, 1002},
	// Autobahn 6.x: invalid UTF-8, whole or across fragments.
	{"InvalidUTF8", [][]byte{frame(fin|opText, []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))}, 1007},
	{"InvalidUTF8InFragments", [][]byte{frame(opText, []byte("\xce")), frame(fin|opCont, []byte("\xce"))}, 1007},
	// Autobahn 9.x, scaled to the limit: a message over the read limit.
	{"MessageOverTheLimit", [][]byte{frame(fin|opText, bytes.Repeat([]byte("a"), 1025))}, 1009},
	{"FragmentsOverTheLimit", [][]byte{frame(opText, bytes.Repeat([]byte("a"), 1000)), frame(fin|opCont, bytes.Repeat([]byte("a"), 25))}, 1009},
	{"64BitLengthOverTheLimit", [][]byte{{fin | opText, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}}, 1009},
}

// Every violation is answered with its close code, the server closes the
// connection, and nothing of it is delivered.
func TestViolationsAreRefused(t *testing.T) {
	t.Parallel()
	for _, v := range violations {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			modes(t, func(t *testing.T, srv *transport.Server) {
				p := dial(t, srv)
				p.send(v.frames...)
				p.closed(v.code)
				var ve *transport.ViolationError
				if err := p.rec.endedWith(t); !errors.As(err, &ve) || ve.Code != v.code {
					t.Fatalf("Ended(%v), want a violation with %d", err, v.code)
				}
				p.rec.ended <- nil
				if len(p.rec.messages) != 0 {
					t.Fatalf("delivered %+v", <-p.rec.messages)
				}
			})
		})
	}
}

// A message of exactly the limit passes.
func TestMessageAtTheLimitIsDelivered(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		want := strings.Repeat("a", 1024)
		p.send(frame(opText, []byte(want[:1000])), frame(fin|opCont, []byte(want[1000:])))
		if m := p.rec.message(t); m.data != want {
			t.Fatalf("got %d bytes", len(m.data))
		}
	})
}

// What the client sends in the packet of its upgrade request is read.
func TestFrameBehindTheUpgradeRequestIsRead(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv, frame(fin|opText, []byte("early"))...)
		if m := p.rec.message(t); m != (message{true, "early"}) {
			t.Fatalf("got %+v", m)
		}
	})
}

// WriteText writes each message as its own final text frame, any size; Ping
// writes an empty ping.
func TestWriteTextAndPing(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		msgs := [][]byte{[]byte("one"), nil, bytes.Repeat([]byte("b"), 200), bytes.Repeat([]byte("c"), 70000)}
		if err := p.conn.WriteText(msgs...); err != nil {
			t.Fatal(err)
		}
		if err := p.conn.Ping(); err != nil {
			t.Fatal(err)
		}
		for _, want := range msgs {
			if op, b := p.next(); op != ws.OpText || !bytes.Equal(b, want) {
				t.Fatalf("got %v of %d bytes, want text of %d", op, len(b), len(want))
			}
		}
		if op, b := p.next(); op != ws.OpPing || len(b) != 0 {
			t.Fatalf("got %v % x, want an empty ping", op, b)
		}
	})
}

// A peer that drops the TCP connection ends it.
func TestPeerThatGoesAwayEndsTheConnection(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, srv *transport.Server) {
		p := dial(t, srv)
		p.nc.Close()
		if err := p.rec.endedWith(t); err == nil {
			t.Fatal("Ended(nil) for a dropped connection")
		}
		p.rec.ended <- nil
	})
}
