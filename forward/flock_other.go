//go:build !unix

package forward

import "os"

// flock is a no-op where flock(2) does not exist: keep one process per
// directory by hand.
func flock(*os.File) error { return nil }
