//go:build !linux

package transport

import (
	"errors"
	"syscall"

	"go.uber.org/zap"
)

// Poller is Linux-only (epoll); elsewhere every connection keeps a reader
// goroutine.
type Poller struct{}

var errNoPoller = errors.New("transport: no poller on this system")

// NewPoller fails: there is no poller on this system.
func NewPoller(*zap.Logger) (*Poller, error) { return nil, errNoPoller }

func (*Poller) add(*conn) error                     { return errNoPoller }
func (*Poller) rearm(uint64, syscall.RawConn) error { return errNoPoller }
func (*Poller) forget(uint64)                       {}

// Stop does nothing.
func (*Poller) Stop() {}

func readNow(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }
