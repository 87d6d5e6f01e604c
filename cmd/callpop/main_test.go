package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind: every
// node, session and broker a test starts must be gone by the end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
