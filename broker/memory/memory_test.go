package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/callpop/callpop/broker/brokertest"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
)

func TestBrokerSuite(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T, o brokertest.Options) (event.Broker, event.Broker) {
		a := memory.New(memory.Config{LogSize: o.LogSize, Now: o.Now})
		b := a.Node()
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	})
}

// TestMain fails the package when any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
