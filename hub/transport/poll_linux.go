//go:build linux

package transport

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Poller watches idle connections' sockets with one epoll instance, so an
// idle connection has no goroutine parked in a read: a parked reader costs a
// 4 KiB stack per socket, more than all the rest of an idle connection. When
// a socket turns readable the poller starts a short pass (conn.readable) that
// reads what arrived and re-arms the socket. Registrations are one-shot, so
// at most one pass per connection runs at a time.
//
// The epoll instance is itself waited on through Go's netpoller (it is
// readable while events are pending), never in a blocking epoll_wait: a
// goroutine in a blocking system call keeps its P until the runtime's monitor
// takes it back, and with one P that stalled everything else for milliseconds
// after each wake-up.
type Poller struct {
	log  *zap.Logger
	epfd int
	file *os.File // epfd, registered with Go's netpoller
	wake int      // an eventfd; writing it stops run
	done chan struct{}

	mu   sync.Mutex
	byID map[uint64]*conn // guarded by mu
	next uint64           // guarded by mu; ids start at 1, 0 is wake

	life    sync.RWMutex // held to use epfd, exclusively to close it
	stopped bool         // guarded by life
}

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// NewPoller starts a poller; Stop releases it. It fails where sockets
// cannot be polled (not Linux).
func NewPoller(log *zap.Logger) (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil { // so os.NewFile registers it with the netpoller
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	p := &Poller{log: log, epfd: epfd, file: os.NewFile(uintptr(epfd), "epoll"), wake: wake,
		done: make(chan struct{}), byID: map[uint64]*conn{}}
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		unix.Close(wake)
		return nil, err
	}
	go p.run(rc)
	return p, nil
}

func (p *Poller) run(rc syscall.RawConn) {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	stop := false
	err := rc.Read(func(uintptr) bool {
		for !stop { // drain: the netpoller reports new readiness as an edge
			n, err := unix.EpollWait(p.epfd, events, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n == 0 {
				if err != nil {
					p.log.Error("epoll wait failed", zap.Error(err))
				}
				return false // wait in the netpoller
			}
			stop = p.dispatch(events[:n])
		}
		return true
	})
	if err != nil {
		p.log.Error("epoll wait failed; idle connections will not be read", zap.Error(err))
	}
}

// dispatch starts passes for the connections in events; true when stopped.
func (p *Poller) dispatch(events []unix.EpollEvent) (stop bool) {
	for _, ev := range events {
		id := eventID(ev)
		if id == 0 {
			return true
		}
		p.mu.Lock()
		c := p.byID[id]
		p.mu.Unlock()
		if c != nil {
			c.readable()
		}
	}
	return false
}

// add watches c's socket and names it in c.pollID; readiness reported while
// a pass runs is ignored (the pass reads it), and the pass re-arms.
func (p *Poller) add(c *conn) error {
	p.mu.Lock()
	p.next++
	id := p.next
	p.byID[id] = c
	p.mu.Unlock()
	c.mu.Lock()
	c.pollID = id
	c.mu.Unlock()
	if err := p.ctl(unix.EPOLL_CTL_ADD, id, c.in.rc); err != nil {
		c.mu.Lock()
		c.pollID = 0
		c.mu.Unlock()
		p.forget(id)
		return err
	}
	return nil
}

// rearm asks for the next readiness of a socket after a pass.
func (p *Poller) rearm(id uint64, rc syscall.RawConn) error {
	return p.ctl(unix.EPOLL_CTL_MOD, id, rc)
}

// ctl runs inside rc.Control, which holds the descriptor open: a socket
// closed meanwhile fails here instead of touching a reused descriptor.
func (p *Poller) ctl(op int, id uint64, rc syscall.RawConn) error {
	p.life.RLock()
	defer p.life.RUnlock()
	if p.stopped {
		return errors.New("transport: poller stopped")
	}
	var cerr error
	err := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: pollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return cerr
}

// forget drops id; the kernel drops the socket from the set when it closes.
func (p *Poller) forget(id uint64) {
	p.mu.Lock()
	delete(p.byID, id)
	p.mu.Unlock()
}

// Stop ends the poller and releases the epoll instance; connections it
// watched end when they are next parked. It is safe to call more than once.
func (p *Poller) Stop() {
	p.life.Lock()
	defer p.life.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	one := [8]byte{1} // any nonzero count, in either byte order, wakes run
	if _, err := unix.Write(p.wake, one[:]); err != nil {
		p.log.Error("stopping the poller", zap.Error(err))
		return
	}
	<-p.done
	p.file.Close()
	unix.Close(p.wake)
}

func eventID(ev unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// readNow reads what the socket holds without waiting for more:
// errWouldBlock when it holds nothing.
func readNow(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				return true // done either way: never wait for readiness here
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == unix.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
