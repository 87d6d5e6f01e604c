package redis_test

import (
	"testing"

	"go.uber.org/goleak"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/brokertest"
	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

func TestBrokerSuite(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	brokertest.Run(t, func(t *testing.T, o brokertest.Options) (event.Broker, event.Broker) {
		cfg := redis.Config{LogSize: o.LogSize, Now: o.Now}
		a := redis.New(srv.Client(), cfg, zaptest.NewLogger(t))
		b := redis.New(srv.Client(), cfg, zaptest.NewLogger(t))
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	})
}

// TestMain fails the package when any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
