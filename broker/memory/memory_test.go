package memory_test

import (
	"testing"

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
