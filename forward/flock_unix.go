//go:build unix

package forward

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockWait is how long OpenFileQueue waits for a held lock. A fork anywhere
// in the process (exec.Command) holds a copy of every descriptor, and so the
// lock, until the child execs: a queue closed and reopened at that moment
// finds its own lock taken for a few milliseconds.
const lockWait = 2 * time.Second

// flock takes an exclusive advisory lock on f, waiting up to lockWait; it
// is released when f is closed or the process exits.
func flock(f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
