package redis

import (
	"context"
	"strings"
	"testing"
)

// StoredNaming implements brokertest.Inspector: the keys whose name holds s
// (SCAN, so it counts what Redis holds, whoever wrote it).
func (b *Broker) StoredNaming(t *testing.T, s string) int {
	t.Helper()
	// Escape the glob's special characters: s is matched literally.
	pattern := "*" + strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s) + "*"
	n := 0
	iter := b.rdb.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return n
}
