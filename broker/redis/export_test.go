package redis

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

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

// LogCallIDs lists the call ids of the frames user's log holds, oldest first.
func (b *Broker) LogCallIDs(t *testing.T, user string) []string {
	t.Helper()
	// Tried again for a while: right after a failover the client may still
	// dial the dead master once before it re-reads the slot map.
	var xs []goredis.XMessage
	var err error
	for try := 0; try < 50; try++ {
		if xs, err = b.rdb.XRange(context.Background(), b.key("log", user), "-", "+").Result(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("xrange: %v", err)
	}
	var ids []string
	for _, x := range xs {
		var f struct {
			CallID string `json:"callid"`
		}
		s, _ := x.Values["f"].(string)
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Fatalf("log entry %q: %v", s, err)
		}
		ids = append(ids, f.CallID)
	}
	return ids
}
