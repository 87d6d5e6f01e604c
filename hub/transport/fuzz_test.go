package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// streamConn is a net.Conn whose peer sent in and then closed; what the
// server writes gathers in out.
type streamConn struct {
	net.Conn
	mu  sync.Mutex
	in  *bytes.Reader
	out bytes.Buffer
}

func (s *streamConn) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.in == nil {
		return 0, net.ErrClosed
	}
	return s.in.Read(p)
}

func (s *streamConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *streamConn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in = nil
	return nil
}

func (*streamConn) SetWriteDeadline(time.Time) error { return nil }

type fuzzHandler struct {
	limit    int
	t        *testing.T
	messages int
	ended    chan error
}

func (*fuzzHandler) Frame() {}
func (*fuzzHandler) Pong()  {}
func (h *fuzzHandler) Message(text bool, p []byte) {
	h.messages++
	if len(p) > h.limit || text && !utf8.Valid(p) {
		h.t.Errorf("delivered a message of %d bytes, text %v, valid UTF-8 %v", len(p), text, utf8.Valid(p))
	}
}
func (h *fuzzHandler) Ended(err error) { h.ended <- err }

// FuzzReadFrame feeds any byte stream to a connection's reader, as the
// client's side of the socket: it must never panic, deliver only messages
// within the limit (text ones valid UTF-8), end exactly once, and write only
// well-formed server frames: pongs, then at most one close frame, last,
// whose code is the violation Ended reports, if any.
func FuzzReadFrame(f *testing.F) {
	mask := [4]byte{1, 2, 3, 4}
	masked := func(b0 byte, p []byte) []byte {
		p = bytes.Clone(p)
		ws.Cipher(p, mask, 0)
		return append(append([]byte{b0, 0x80 | byte(len(p))}, mask[:]...), p...)
	}
	f.Add(masked(0x81, []byte(`{"type":"ack","id":"1-1"}`)))
	f.Add(append(masked(0x01, []byte("fra")), append(masked(0x89, []byte("p")), masked(0x80, []byte("g"))...)...))
	f.Add(masked(0x88, []byte{0x03, 0xe8}))
	f.Add(masked(0x88, []byte{0x03, 0xe7}))
	f.Add(masked(0x81, []byte{0xff}))
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 64
		sc := &streamConn{in: bytes.NewReader(in)}
		c := &conn{srv: &Server{ReadLimit: limit, WriteTimeout: time.Hour}, nc: sc}
		c.in.nc = sc
		h := &fuzzHandler{limit: limit, t: t, ended: make(chan error, 2)}
		c.Start(h)
		var err error
		select {
		case err = <-h.ended:
		case <-time.After(10 * time.Second):
			t.Fatal("Ended never called")
		}
		select {
		case <-h.ended:
			t.Fatal("Ended called twice")
		default:
		}
		out := sc.out.Bytes()
		closeCode := -1
		for len(out) > 0 {
			hdr, rerr := ws.ReadHeader(bytes.NewReader(out))
			if rerr != nil {
				t.Fatalf("the server wrote a bad header: % x", out)
			}
			n := ws.HeaderSize(hdr)
			if hdr.Masked || !hdr.Fin || hdr.Rsv != 0 || int64(len(out)-n) < hdr.Length || hdr.Length > 125 {
				t.Fatalf("the server wrote a bad frame %+v", hdr)
			}
			if closeCode >= 0 {
				t.Fatal("a frame after the close frame")
			}
			switch hdr.OpCode {
			case ws.OpPong:
			case ws.OpClose:
				if hdr.Length < 2 {
					t.Fatal("a close frame without a code")
				}
				closeCode = int(binary.BigEndian.Uint16(out[n:]))
			default:
				t.Fatalf("the server wrote opcode %v", hdr.OpCode)
			}
			out = out[n+int(hdr.Length):]
		}
		var ve *ViolationError
		if errors.As(err, &ve) && ve.Code != closeCode {
			t.Fatalf("Ended(%v) but the close frame said %d", err, closeCode)
		}
		if err == nil && closeCode < 0 {
			t.Fatal("Ended(nil) without a close handshake")
		}
		if err != nil && !errors.As(err, &ve) && !errors.As(err, new(CloseError)) &&
			!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Ended(%v)", err)
		}
	})
}
