package forward_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the tests: a Run
// that did not stop with its context, a stats watcher, an HTTP connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
