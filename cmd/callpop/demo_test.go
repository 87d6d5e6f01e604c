package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// syncBuffer is an io.Writer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoShowsPopupsWithinSeconds runs `callpop demo` as a newcomer would and
// watches as andy, the demo page's default manager: the printed URL serves
// the page, its token endpoint works, and call frames arrive within seconds.
func TestDemoShowsPopupsWithinSeconds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0"}, envOf(nil), &out, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo ended with %v", err)
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := regexp.MustCompile(`open (http://\S+)/demo`).FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(base + "/demo")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /demo: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/demo/token?user=andy")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	conn, _, err := websocket.Dial(dctx, strings.Replace(base, "http", "ws", 1)+"/ws?token="+tok.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for {
		_, data, err := conn.Read(rctx)
		if err != nil {
			t.Fatalf("no call frame for andy within 30 s: %v", err)
		}
		var f map[string]any
		json.Unmarshal(data, &f)
		if f["type"] == "call" && f["event"] == "INCOMING" || f["type"] == "call" && f["event"] == "OUTGOING" {
			t.Logf("first popup: %s", data)
			return
		}
	}
}
