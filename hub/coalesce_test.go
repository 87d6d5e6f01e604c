package hub

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// sink is the socket under a coalescer in these tests.
type sink struct {
	net.Conn
	got bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error)      { return s.got.Write(p) }
func (s *sink) SetWriteDeadline(time.Time) error { return nil }

// serverFrame encodes an unmasked final text frame the plain way, apart from
// the tracker under test.
func serverFrame(payload []byte) []byte {
	var h []byte
	switch n := len(payload); {
	case n < 126:
		h = []byte{0x81, byte(n)}
	case n <= 0xffff:
		h = binary.BigEndian.AppendUint16([]byte{0x81, 126}, uint16(n))
	default:
		h = binary.BigEndian.AppendUint64([]byte{0x81, 127}, uint64(n))
	}
	return append(h, payload...)
}

// splitFrames decodes an unmasked stream into frames (opcode byte, payload).
func splitFrames(t *testing.T, b []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("stream ends inside a header: % x", b)
		}
		op, n, hl := b[0], uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, hl = uint64(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			n, hl = binary.BigEndian.Uint64(b[2:10]), 10
		}
		if uint64(len(b)-hl) < n {
			t.Fatalf("stream ends inside a frame's payload")
		}
		ops = append(ops, op)
		payloads = append(payloads, b[hl:hl+int(n)])
		b = b[hl+int(n):]
	}
	return ops, payloads
}

// FuzzCoalescerPings writes frames of the sizes in sizes through a coalescer
// in chunks cut by cuts (as coder/websocket's buffered writer does), and at
// the cuts asks for a ping, starts or ends a batch, or writes a text frame of
// its own: the socket must see every frame whole and in order, the own
// frames exactly where they were accepted, and each ping between two frames.
func FuzzCoalescerPings(f *testing.F) {
	f.Add([]byte{10, 0, 200, 3}, []byte{1, 5, 7, 64, 3})
	f.Add([]byte{125, 126, 255}, []byte{2, 2, 2, 2, 200})
	f.Add([]byte{0, 0, 0}, []byte{1})
	f.Fuzz(func(t *testing.T, sizes, cuts []byte) {
		if len(sizes) > 64 || len(cuts) > 256 {
			return
		}
		var stream []byte
		var want [][]byte
		var ends []int // where each frame of stream ends
		for i, sz := range sizes {
			n := int(sz)
			switch {
			case sz == 255:
				n = 70000 // a 64-bit length
			case sz > 250:
				n = 126 + int(sz-251)*20000 // 16-bit lengths
			}
			if len(stream)+n > 300000 {
				return // keep an input quick
			}
			p := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			want = append(want, p)
			stream = append(stream, serverFrame(p)...)
			ends = append(ends, len(stream))
		}
		s := &sink{}
		c := &coalescer{conn: s, timeout: time.Second}
		asked, fed, own := 0, 0, 0
		for i := 0; fed < len(stream); i++ {
			cut := 1
			if len(cuts) > 0 {
				cut = int(cuts[i%len(cuts)])%97 + 1
			}
			cut = min(cut, len(stream)-fed)
			if _, err := c.Write(stream[fed : fed+cut]); err != nil {
				t.Fatal(err)
			}
			fed += cut
			if i%2 == 0 {
				p := []byte(fmt.Sprintf("own-%d", own))
				switch err := c.text(p); {
				case err == nil:
					// between frames: after exactly the frames fed whole
					k := 0
					for k < len(ends) && ends[k] <= fed {
						k++
					}
					want = slices.Insert(want, k+own, p)
					own++
				case !errors.Is(err, errMidFrame):
					t.Fatal(err)
				}
			}
			switch i % 3 {
			case 0:
				_ = c.ping()
				asked++
			case 1:
				c.holdWrites()
			case 2:
				_ = c.release()
			}
		}
		_ = c.release()
		ops, got := splitFrames(t, s.got.Bytes())
		pings := 0
		var data [][]byte
		for i, op := range ops {
			switch {
			case op == 0x89 && len(got[i]) == 0:
				pings++
			case op == 0x81:
				data = append(data, got[i])
			default:
				t.Fatalf("frame %d: opcode %#x", i, op)
			}
		}
		if len(data) != len(want) {
			t.Fatalf("%d frames out, want %d", len(data), len(want))
		}
		for i := range want {
			if !bytes.Equal(data[i], want[i]) {
				t.Fatalf("frame %d changed on the way", i)
			}
		}
		if asked > 0 && (pings == 0 || pings > asked) {
			t.Fatalf("%d pings out for %d asked", pings, asked)
		}
	})
}

// After close only coder/websocket's own frames (the close frame) go out.
func TestNothingButTheCloseFrameAfterClose(t *testing.T) {
	s := &sink{}
	c := &coalescer{conn: s, timeout: time.Second}
	c.close()
	if err := c.text([]byte("late")); err == nil {
		t.Fatal("a data frame was accepted after close")
	}
	if err := c.ping(); err != nil {
		t.Fatal(err)
	}
	closeFrame := []byte{0x88, 0x02, 0x03, 0xf4}
	if _, err := c.Write(closeFrame); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.got.Bytes(), closeFrame) {
		t.Fatalf("socket got % x, want the close frame only", s.got.Bytes())
	}
}
