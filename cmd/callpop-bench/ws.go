//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A minimal RFC 6455 client, just what a load tool needs and no more: one
// reader goroutine per socket, a small read buffer, no writer goroutine. It
// answers pings (from the reader) and can send acks (from the reader too), so
// every write happens on the reading goroutine and needs no lock.

// wsConn is one client socket.
type wsConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte // payload buffer, reused frame to frame
	max int    // read limit
}

// errClosed reports a close frame from the server, with its code.
type errClosed struct{ code int }

func (e errClosed) Error() string { return fmt.Sprintf("closed by server with code %d", e.code) }

// sourceDialer returns a dialer bound to source address 127.0.0.{1+i%n} with
// IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port at connect() time by
// the whole 4-tuple and ephemeral ports never cap a run.
func sourceDialer(i, n int, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: -1}
	if n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%n))}
		d.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

// errHTTP is a refused upgrade: the server answered with status instead of 101.
type errHTTP struct{ status int }

func (e errHTTP) Error() string { return fmt.Sprintf("upgrade refused: HTTP %d", e.status) }

// dialWS opens a WebSocket to base (http://host:port) at pathQuery with d,
// token in the Authorization header (a server-side client can set one;
// browsers use tickets).
func dialWS(ctx context.Context, d *net.Dialer, base *url.URL, pathQuery, token string, readLimit int) (*wsConn, error) {
	c, err := d.DialContext(ctx, "tcp", base.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	var req strings.Builder
	req.Grow(len(pathQuery) + 200)
	req.WriteString("GET ")
	req.WriteString(pathQuery)
	req.WriteString(" HTTP/1.1\r\nHost: ")
	req.WriteString(base.Host)
	req.WriteString("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ")
	req.WriteString(base64.StdEncoding.EncodeToString(key[:]))
	if token != "" { // Centrifugo's clients send theirs in the connect command
		req.WriteString("\r\nAuthorization: Bearer ")
		req.WriteString(token)
	}
	req.WriteString("\r\nUser-Agent: callpop-bench\r\n\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 1024)
	status := 0
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("upgrade response: %w", err)
		}
		if first {
			// "HTTP/1.1 101 Switching Protocols"
			f := strings.Fields(string(line))
			if len(f) < 2 {
				c.Close()
				return nil, fmt.Errorf("upgrade response: bad status line %q", line)
			}
			status, _ = strconv.Atoi(f[1])
			continue
		}
		if len(line) <= 2 { // the blank line ending the header
			break
		}
	}
	if status != 101 {
		c.Close()
		return nil, errHTTP{status}
	}
	_ = c.SetDeadline(time.Time{})
	return &wsConn{c: c, br: br, max: readLimit}, nil
}

// next returns the next data message's payload, valid until the next call.
// It answers pings on the way.
func (w *wsConn) next() ([]byte, error) {
	w.buf = w.buf[:0]
	for {
		h0, err := w.br.ReadByte()
		if err != nil {
			return nil, err
		}
		h1, err := w.br.ReadByte()
		if err != nil {
			return nil, err
		}
		fin, op := h0&0x80 != 0, h0&0x0f
		if h1&0x80 != 0 {
			return nil, errors.New("masked frame from server")
		}
		n := uint64(h1 & 0x7f)
		if n >= 126 {
			k := 2
			if n == 127 {
				k = 8
			}
			b, err := w.br.Peek(k)
			if err != nil {
				return nil, err
			}
			if k == 2 {
				n = uint64(binary.BigEndian.Uint16(b))
			} else {
				n = binary.BigEndian.Uint64(b)
			}
			_, _ = w.br.Discard(k)
		}
		if op >= 8 { // control frame: at most 125 bytes
			if n > 125 {
				return nil, errors.New("oversized control frame")
			}
			var p [125]byte
			if _, err := io.ReadFull(w.br, p[:n]); err != nil {
				return nil, err
			}
			switch op {
			case 8:
				code := 1005
				if n >= 2 {
					code = int(binary.BigEndian.Uint16(p[:2]))
				}
				return nil, errClosed{code}
			case 9:
				if err := w.write(10, p[:n]); err != nil {
					return nil, err
				}
			}
			continue
		}
		if uint64(len(w.buf))+n > uint64(w.max) {
			return nil, fmt.Errorf("message over the read limit of %d bytes", w.max)
		}
		start := len(w.buf)
		w.buf = slices.Grow(w.buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.br, w.buf[start:]); err != nil {
			return nil, err
		}
		if fin {
			return w.buf, nil
		}
	}
}

// write sends one masked frame; only the reader goroutine calls it. Payloads
// up to 64 KiB (a Centrifugo connect command carries a JWT).
func (w *wsConn) write(op byte, payload []byte) error {
	if len(payload) > 0xffff {
		return errors.New("client frame too long")
	}
	var small [8 + 125]byte
	f := small[:0]
	if len(payload) > 125 {
		f = make([]byte, 0, 8+len(payload))
	}
	f = append(f, 0x80|op)
	if len(payload) <= 125 {
		f = append(f, 0x80|byte(len(payload)))
	} else {
		f = append(f, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	_ = w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := w.c.Write(f)
	return err
}

// close drops the TCP connection at once, without a close handshake.
func (w *wsConn) close() { _ = w.c.Close() }
