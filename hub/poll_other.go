//go:build !linux

package hub

import (
	"errors"
	"syscall"

	"go.uber.org/zap"
)

// poller is Linux-only (epoll); elsewhere every session keeps a reader
// goroutine.
type poller struct{}

func newPoller(*zap.Logger) (*poller, error) {
	return nil, errors.New("hub: no poller on this system")
}

func (*poller) add(*session, syscall.RawConn) error {
	return errors.New("hub: no poller on this system")
}
func (*poller) rearm(uint64, syscall.RawConn) error { return errors.New("hub: no poller") }
func (*poller) forget(uint64)                       {}
func (*poller) stop()                               {}

func readNow(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }
