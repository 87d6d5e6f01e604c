package hub_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/callpop/callpop/hub"
)

// BenchmarkFanOut: one event published on the embedded broker until every
// session of its user (1, or 50 tabs) has read the frame over a real
// loopback WebSocket. Per operation: one event, n frames.
func BenchmarkFanOut(b *testing.B) { benchFanOut(b, false) }

// BenchmarkFanOutTenantMetrics is BenchmarkFanOut with the per-tenant
// series on (hub.Config.TenantMetrics), as a node serving tenants runs.
func BenchmarkFanOutTenantMetrics(b *testing.B) { benchFanOut(b, true) }

func benchFanOut(b *testing.B, tenantMetrics bool) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			h := newTestHub(b, hub.Config{MaxSessionsPerUser: n, TenantMetrics: tenantMetrics})
			got := make(chan struct{}, n)
			for range n {
				c := h.dial(b, "andy", time.Hour, nil)
				read(b, c) // hello
				go func() {
					for {
						if _, _, err := c.Read(context.Background()); err != nil {
							return
						}
						got <- struct{}{}
					}
				}()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				h.incoming(b, "andy", "bench-"+strconv.Itoa(i), "")
				for range n {
					<-got
				}
			}
		})
	}
}
