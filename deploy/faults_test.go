package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/callpop/callpop/internal/redistest"
)

// widget is a client that behaves as widget.js does about delivery: it
// reconnects through the load balancer whenever its socket ends, resuming
// with since=<last id>, and records every call frame it receives.
type widget struct {
	user string
	base string

	mu        sync.Mutex
	last      string
	got       map[string]int // callid → INCOMING frames received
	ids       map[string]bool
	dupIDs    int
	unrecov   int // resumes the server could not recover
	reconnect int
	nodes     map[string]bool // X-Callpop-Node values seen (unused when absent)
}

func newWidget(base, user string) *widget {
	return &widget{user: user, base: base, got: map[string]int{}, ids: map[string]bool{}, nodes: map[string]bool{}}
}

func (w *widget) run(ctx context.Context, t *testing.T, ready chan<- struct{}) {
	first := true
	fails := 0
	for ctx.Err() == nil {
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": w.user, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(testJWTSecret))
		var conn *websocket.Conn
		ticket, err := w.ticket(ctx, tok)
		if err == nil {
			u := "ws" + strings.TrimPrefix(w.base, "http") + "/ws?ticket=" + ticket
			w.mu.Lock()
			if w.last != "" {
				u += "&since=" + url.QueryEscape(w.last)
			}
			w.mu.Unlock()
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			conn, _, err = websocket.Dial(dctx, u, nil)
			cancel()
		}
		if err != nil {
			// Back off as widget.js does (jittered, growing), not in a tight
			// loop that would make nginx give up on every node at once.
			fails = min(fails+1, 5)
			time.Sleep(time.Duration(rand.IntN(50<<fails)) * time.Millisecond)
			continue
		}
		fails = 0
		w.read(ctx, conn, first, ready)
		first = false
		conn.CloseNow()
		w.mu.Lock()
		w.reconnect++
		w.mu.Unlock()
	}
}

// ticket trades tok for a socket ticket through the balancer, as widget.js
// does before each connect; any node may redeem it.
func (w *widget) ticket(ctx context.Context, tok string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/api/ws-ticket", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		Ticket string `json:"ticket"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK || body.Ticket == "" {
		return "", fmt.Errorf("ws-ticket: %d %v", res.StatusCode, err)
	}
	return body.Ticket, nil
}

func (w *widget) read(ctx context.Context, conn *websocket.Conn, first bool, ready chan<- struct{}) {
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var f map[string]any
		if json.Unmarshal(data, &f) != nil {
			return
		}
		w.mu.Lock()
		switch f["type"] {
		case "hello":
			if rec, ok := f["recovered"].(bool); ok && !rec {
				w.unrecov++
			}
			if l, _ := f["last"].(string); l != "" && w.last == "" {
				w.last = l
			}
			if first {
				ready <- struct{}{}
			}
		case "call":
			id, _ := f["id"].(string)
			if w.ids[id] {
				w.dupIDs++
			}
			w.ids[id] = true
			w.last = id
			if f["event"] == "INCOMING" {
				w.got[fmt.Sprint(f["callid"])]++
			}
		}
		w.mu.Unlock()
	}
}

// cluster3 is three nodes on one Redis behind the shipped nginx config.
type cluster3 struct {
	bin, redis, dir string
	nodes           []*node
	base            string
}

func startCluster3(t *testing.T) *cluster3 {
	nginx := findNginx(t)
	root := repoRoot(t)
	dir := t.TempDir()
	c := &cluster3{bin: buildCallpop(t, root, dir), redis: redistest.Start(t).URL(), dir: dir}
	for i := range 3 {
		c.nodes = append(c.nodes, startNode(t, c.bin, c.redis, dir, fmt.Sprint("n", i)))
	}
	for _, n := range c.nodes {
		n.waitReady(t)
	}
	c.base = startNginx(t, nginx, root, dir, c.nodes...)
	return c
}

// restart starts node i again on its address, as an orchestrator would.
func (c *cluster3) restart(t *testing.T, i int, gen int) {
	old := c.nodes[i]
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = old.cmd.Env
	n := &node{proc: start(t, fmt.Sprintf("callpop n%d.%d", i, gen), filepath.Join(c.dir, fmt.Sprintf("callpop-n%d.%d.log", i, gen)), cmd), addr: old.addr}
	n.waitReady(t)
	c.nodes[i] = n
}

// pbxPoster posts INCOMING webhooks through nginx as the PBX would, retrying
// each until it is answered 200 (callpop applies repeats once).
func pbxPoster(t *testing.T, base string, users []string, calls int, every time.Duration, during func(i int)) map[string][]string {
	sent := map[string][]string{}
	for i := range calls {
		user := users[i%len(users)]
		callid := fmt.Sprintf("k-%d", i)
		deadline := time.Now().Add(20 * time.Second)
		for {
			res, body := postWebhook2(t, base, user, callid)
			if res == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("webhook %s never accepted: %d %s", callid, res, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		sent[user] = append(sent[user], callid)
		if during != nil {
			during(i)
		}
		time.Sleep(every)
	}
	return sent
}

func postWebhook2(t *testing.T, base, user, callid string) (int, string) {
	form := url.Values{"cmd": {"event"}, "type": {"INCOMING"}, "user": {user}, "callid": {callid},
		"phone": {"79101234567"}, "crm_token": {testCRMToken}}
	req, _ := newPost(base+"/webhook", form.Encode())
	res, err := pbx.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	return res.StatusCode, ""
}

// runWidgets starts two widgets per user and waits for their first hello.
func runWidgets(t *testing.T, base string, users []string) ([]*widget, context.CancelFunc, *sync.WaitGroup) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ready := make(chan struct{}, 2*len(users))
	var ws []*widget
	for _, u := range users {
		for range 2 {
			w := newWidget(base, u)
			ws = append(ws, w)
			wg.Add(1)
			go func() { defer wg.Done(); w.run(ctx, t, ready) }()
		}
	}
	for range ws {
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatal("widgets not connected within 10 s")
		}
	}
	return ws, cancel, &wg
}

// checkExactlyOnce waits until every widget has every call of its user,
// then requires each exactly once.
func checkExactlyOnce(t *testing.T, ws []*widget, sent map[string][]string) {
	deadline := time.Now().Add(20 * time.Second)
	for _, w := range ws {
		for {
			w.mu.Lock()
			missing := 0
			for _, id := range sent[w.user] {
				if w.got[id] == 0 {
					missing++
				}
			}
			w.mu.Unlock()
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("widget of %s misses %d of %d calls (reconnects %d)", w.user, missing, len(sent[w.user]), w.reconnect)
			}
			time.Sleep(50 * time.Millisecond)
		}
		w.mu.Lock()
		for id, n := range w.got {
			if n != 1 {
				t.Errorf("widget of %s got %s %d times", w.user, id, n)
			}
		}
		if w.dupIDs > 0 || w.unrecov > 0 {
			t.Errorf("widget of %s: %d duplicate ids, %d unrecovered resumes", w.user, w.dupIDs, w.unrecov)
		}
		w.mu.Unlock()
	}
}

// TestNodeKilledMidCallsLosesNothing: three nodes behind nginx, twelve widgets,
// calls flowing; one node is killed (SIGKILL, no drain). Every widget on it
// reconnects through nginx to a survivor, resumes, and ends with every call
// of its user exactly once.
func TestNodeKilledMidCallsLosesNothing(t *testing.T) {
	t.Parallel()
	c := startCluster3(t)
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	ws, stop, wg := runWidgets(t, c.base, users)
	defer func() { stop(); wg.Wait() }()
	sent := pbxPoster(t, c.base, users, 60, 20*time.Millisecond, func(i int) {
		if i == 20 {
			_ = c.nodes[1].cmd.Process.Signal(syscall.SIGKILL)
		}
	})
	checkExactlyOnce(t, ws, sent)
	reconnected := 0
	for _, w := range ws {
		reconnected += w.reconnect
	}
	if reconnected == 0 {
		t.Fatal("no widget was on the killed node: the test proved nothing")
	}
	t.Logf("%d reconnects after the kill", reconnected)
}

// TestRollingRestartLosesNothing: each node in turn gets SIGTERM (drain, 1012)
// and comes back, while calls flow.
func TestRollingRestartLosesNothing(t *testing.T) {
	t.Parallel()
	c := startCluster3(t)
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	ws, stop, wg := runWidgets(t, c.base, users)
	defer func() { stop(); wg.Wait() }()
	sent := pbxPoster(t, c.base, users, 90, 20*time.Millisecond, func(i int) {
		if i%30 == 10 {
			n := i / 30
			c.nodes[n].stop(t) // SIGTERM: drains with 1012
			c.restart(t, n, 1)
			// As an orchestrator does: the next node only once this one is
			// ready and the balancer has it back (fail_timeout=2s).
			time.Sleep(2500 * time.Millisecond)
		}
	})
	checkExactlyOnce(t, ws, sent)
}

func newPost(u, body string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, err
}
