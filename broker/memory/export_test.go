package memory

import (
	"strings"
	"testing"
)

// StoredNaming implements brokertest.Inspector: the call records and users
// whose key holds s.
func (b *Broker) StoredNaming(_ *testing.T, s string) int {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	n := 0
	for id := range b.s.calls {
		if strings.Contains(id, s) {
			n++
		}
	}
	for u := range b.s.users {
		if strings.Contains(u, s) {
			n++
		}
	}
	return n
}
