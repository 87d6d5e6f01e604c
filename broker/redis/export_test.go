package redis

import (
	"context"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// StoredNaming implements brokertest.Inspector: the keys whose name holds s
// (SCAN, so it counts what Redis holds, whoever wrote it).
func (b *Broker) StoredNaming(t *testing.T, s string) int {
	t.Helper()
	// Escape the glob's special characters: s is matched literally.
	pattern := "*" + strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s) + "*"
	ctx := context.Background()
	scan := func(c goredis.UniversalClient) (int, error) {
		n := 0
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		return n, iter.Err()
	}
	cc, ok := b.rdb.(*goredis.ClusterClient)
	if !ok {
		n, err := scan(b.rdb)
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		return n
	}
	var mu sync.Mutex
	n := 0
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		k, err := scan(c)
		mu.Lock()
		n += k
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return n
}
