package contacts_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the tests: a CRM
// request left running after its look-up, or an idle HTTP connection.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
