//go:build !unix

package file

// lockFile is a no-op where flock is missing: one writer at a time is then
// the operator's to ensure.
func lockFile(string) (func(), error) { return func() {}, nil }
