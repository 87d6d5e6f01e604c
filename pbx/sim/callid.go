package sim

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
)

// callSeq numbers the call ids NewCallID makes.
var callSeq atomic.Uint64

// NewCallID returns a fresh call id shaped like the real PBX's,
// "B10D0EB124F4E64AFAEA-1511": 20 random hex digits, a dash and a sequence
// number. It is the default Config.NewCallID and safe for concurrent use.
func NewCallID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read's contract)
	return strings.ToUpper(hex.EncodeToString(b[:])) + "-" + strconv.FormatUint(1000+callSeq.Add(1), 10)
}
