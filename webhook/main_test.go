package webhook_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the tests: a contact
// look-up left running after its budget, or a server left open.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
