package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/callpop/callpop/internal/redistest"
)

// The secrets of the test cluster.
const (
	testCRMToken  = "nginx-test-crm-token"
	testJWTSecret = "nginx-test-jwt-secret-0123456789abcdef" // ≥ 32 bytes
)

// The test's network: nginx and the nodes on 127.0.0.1 (the nodes trust
// nginx's X-Forwarded-For from there), the "PBX" posting from 127.0.0.2, the
// only address the nodes take webhooks from. Linux routes all of 127/8 to lo.
const (
	proxyAddr = "127.0.0.1"
	pbxAddr   = "127.0.0.2"
)

// pbx is an HTTP client whose connections come from pbxAddr.
var pbx = &http.Client{Transport: &http.Transport{
	DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(pbxAddr)}}).DialContext,
}}

// TestNginxCarriesSocketsAndWebhooksAcrossNodes runs deploy/nginx/callpop.conf
// and site.conf, unchanged, in front of two `callpop serve` nodes on one
// redis-server: two sessions of one user land on different nodes, a webhook
// posted through nginx reaches both, nginx passes X-Request-Id and the
// client's address in X-Forwarded-For (the nodes' webhook allow-list sees the
// PBX, not nginx), answers an oversized webhook with callpop's JSON 413, and
// when one node drains its session is closed with 1012 through nginx while
// webhooks keep flowing through the other.
func TestNginxCarriesSocketsAndWebhooksAcrossNodes(t *testing.T) {
	t.Parallel()
	nginx := findNginx(t)
	root := repoRoot(t)
	dir := t.TempDir()
	bin := buildCallpop(t, root, dir)
	rds := redistest.Start(t)

	a := startNode(t, bin, rds.URL(), dir, "a")
	b := startNode(t, bin, rds.URL(), dir, "b")
	a.waitReady(t)
	b.waitReady(t)
	lb := startNginx(t, nginx, root, filepath.Join(dir, "nginx"), a, b)

	// Two sessions of andy: least_conn sends the second to the node that does
	// not hold the first.
	s1 := dial(t, lb, "andy")
	s1.expect(t, "hello", "")
	first := waitSessions(t, a, b, 1)
	s2 := dial(t, lb, "andy")
	s2.expect(t, "hello", "")
	if got := waitSessions(t, a, b, 2); got != [2]int{1, 1} {
		t.Fatalf("sessions per node %v, want one on each", got)
	}
	holderOfS1, other := a, b
	if first[1] == 1 {
		holderOfS1, other = b, a
	}

	// A webhook through nginx reaches the sessions on both nodes, and its
	// request id reaches the node that took it.
	res, body := postWebhook(t, lb, "x1", "nginx-test-rid-1")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("webhook through nginx: %d %s", res.StatusCode, body)
	}
	if got := res.Header.Get("X-Request-Id"); got != "nginx-test-rid-1" {
		t.Errorf("X-Request-Id in the answer %q, want the caller's", got)
	}
	s1.expect(t, "call", "x1")
	s2.expect(t, "call", "x1")
	if !a.logContains(`"request_id":"nginx-test-rid-1"`) && !b.logContains(`"request_id":"nginx-test-rid-1"`) {
		t.Errorf("no node logged the request id nginx passed on")
	}

	// The nodes take webhooks from the PBX's address only, and see it through
	// nginx: a webhook from anywhere else is refused.
	res, body = post(t, http.DefaultClient, lb+"/webhook", url.Values{"cmd": {"webhook"}, "crm_token": {testCRMToken}}.Encode(), "")
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("webhook from %s (not the PBX): %d %s, want 403", proxyAddr, res.StatusCode, body)
	}

	// Without an id, nginx makes one (32 hex digits), passes it on and
	// returns it.
	res, body = postWebhook(t, lb, "x0", "")
	rid := res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusOK || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(rid) {
		t.Errorf("webhook without an id: %d %s, X-Request-Id %q", res.StatusCode, body, rid)
	} else if !a.logContains(`"request_id":"`+rid+`"`) && !b.logContains(`"request_id":"`+rid+`"`) {
		t.Errorf("no node logged the request id %s nginx made", rid)
	}
	s1.expect(t, "call", "x0")
	s2.expect(t, "call", "x0")

	// A body over 64 KiB is stopped at nginx, with callpop's JSON answer.
	big := url.Values{"cmd": {"event"}, "crm_token": {testCRMToken}, "pad": {strings.Repeat("x", 70<<10)}}
	// So is one to a tenant's /webhook/<id>, which has the webhook's location.
	for _, path := range []string{"/webhook", "/webhook/acme.example.com"} {
		res, body = post(t, pbx, lb+path, big.Encode(), "")
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
			strings.TrimSpace(body) != `{"error":"Request too large"}` {
			t.Errorf("oversized webhook to %s: %d %q %s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}

	// Drain: SIGTERM to the node holding s1 closes s1 with 1012 (through
	// nginx); webhooks and new sessions go on through the other node.
	holderOfS1.stop(t)
	if code := s1.closedWith(t); code != 1012 {
		t.Fatalf("session on the drained node closed with %d, want 1012", code)
	}
	s3 := dial(t, lb, "andy")
	s3.expect(t, "hello", "")
	res, body = postWebhook(t, lb, "x2", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("webhook with one node down: %d %s", res.StatusCode, body)
	}
	s2.expect(t, "call", "x2")
	s3.expect(t, "call", "x2")
	if n := other.sessions(t); n != 2 {
		t.Errorf("surviving node holds %d sessions, want 2", n)
	}
}

// TestNginxAccessLogKeepsNoTokenOrTicket runs sessions through the shipped
// nginx config and log format — a widget's (ticket), an old widget's (token
// in the URL) and a page calling the API with a token in the query — and
// finds neither the token nor the ticket in nginx's access log.
func TestNginxAccessLogKeepsNoTokenOrTicket(t *testing.T) {
	t.Parallel()
	nginx := findNginx(t)
	root := repoRoot(t)
	dir := t.TempDir()
	bin := buildCallpop(t, root, dir)
	rds := redistest.Start(t)
	n := startNode(t, bin, rds.URL(), dir, "a")
	n.waitReady(t)
	ngDir := filepath.Join(dir, "nginx")
	lb := startNginx(t, nginx, root, ngDir, n)

	tok := widgetToken(t, "andy")
	ticket := socketTicket(t, lb, tok)
	s1 := dialQuery(t, lb, "ticket="+ticket)
	s1.expect(t, "hello", "")
	s2 := dialQuery(t, lb, "token="+tok) // a widget.js cached from before tickets
	s2.expect(t, "hello", "")
	res, err := http.Get(lb + "/api/calls?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api with the token in the query: %d, want 401", res.StatusCode)
	}
	// nginx logs a socket when it ends.
	s1.conn.Close(websocket.StatusNormalClosure, "")
	s2.conn.Close(websocket.StatusNormalClosure, "")
	logPath := filepath.Join(ngDir, "access.log")
	var log []byte
	deadline := time.Now().Add(10 * time.Second)
	for bytes.Count(log, []byte("GET /ws")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("access log has not logged both sockets within 10 s:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
		log, _ = os.ReadFile(logPath)
	}
	if !bytes.Contains(log, []byte("POST /api/ws-ticket ")) || !bytes.Contains(log, []byte("GET /api/calls ")) {
		t.Errorf("access log lacks the API requests:\n%s", log)
	}
	for name, secret := range map[string]string{"token": tok, "ticket": ticket} {
		if bytes.Contains(log, []byte(secret)) {
			t.Errorf("the %s is in nginx's access log:\n%s", name, log)
		}
	}
	if !n.logContains(`"msg":"listening"`) {
		t.Errorf("node log unreadable")
	}
	for name, secret := range map[string]string{"token": tok, "ticket": ticket} {
		if n.logContains(secret) {
			t.Errorf("the %s is in the node's log", name)
		}
	}
}

// findNginx returns nginx's path. It skips the test when nginx is missing
// outside CI; in CI (where scripts/test.sh installs it) that is a failure.
func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") == "" {
		t.Skip("nginx not installed (scripts/test.sh installs nginx-light)")
	}
	t.Fatal("nginx not installed, and CI is set: scripts/test.sh should have installed nginx-light")
	return ""
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		t.Fatalf("go env GOMOD: %q %v", out, err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func buildCallpop(t *testing.T, root, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "callpop")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/callpop")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/callpop: %v\n%s", err, out)
	}
	return bin
}

// proc is a child process stopped with SIGTERM at test end.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

func start(t *testing.T, name, log string, cmd *exec.Cmd) *proc {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("--- %s output:\n%s", name, tail(b, 4000))
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit, killing after 10 s.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10 s of SIGTERM; killing it", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logContains(s string) bool {
	b, _ := os.ReadFile(p.log)
	return bytes.Contains(b, []byte(s))
}

// node is one `callpop serve` process.
type node struct {
	*proc
	addr string // host:port
}

func startNode(t *testing.T, bin, redisURL, dir, name string) *node {
	t.Helper()
	addr := proxyAddr + ":" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(environWithout("CALLPOP_"),
		"CALLPOP_ADDR="+addr,
		"CALLPOP_REDIS_URL="+redisURL,
		"CALLPOP_CRM_TOKEN="+testCRMToken,
		"CALLPOP_JWT_SECRET="+testJWTSecret,
		"CALLPOP_SHUTDOWN_TIMEOUT=5s",
		"CALLPOP_TRUSTED_PROXIES="+proxyAddr,
		"CALLPOP_WEBHOOK_ALLOW="+pbxAddr+"/32",
	)
	return &node{proc: start(t, "callpop "+name, filepath.Join(dir, "callpop-"+name+".log"), cmd), addr: addr}
}

// waitReady waits until the node's /readyz answers 200.
func (n *node) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, n.proc, "/readyz 200 on "+n.addr, func() bool {
		res, err := http.Get("http://" + n.addr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// sessions reads the node's callpop_sessions gauge.
func (n *node) sessions(t *testing.T) int {
	t.Helper()
	res, err := http.Get("http://" + n.addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", n.name, err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "callpop_sessions "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics of %s: %q", n.name, sc.Text())
			}
			return int(f)
		}
	}
	t.Fatalf("metrics of %s: no callpop_sessions", n.name)
	return 0
}

// waitSessions waits until a and b hold total sessions together and returns
// how many each holds.
func waitSessions(t *testing.T, a, b *node, total int) [2]int {
	t.Helper()
	var got [2]int
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = [2]int{a.sessions(t), b.sessions(t)}
		if got[0]+got[1] == total {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions per node %v, want %d in all", got, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNginx runs nginx with a configuration of its own around the repo's
// deploy/nginx/callpop.conf, and returns its base URL.
//
// The layout under dir (nginx's prefix, and the directory of its main config
// file, against which the relative includes in callpop.conf resolve):
//
//	nginx.conf             written here: daemon off, pid, logs and temp paths
//	                       under dir, and `include <repo>/deploy/nginx/callpop.conf;`
//	callpop/site.conf      a symlink to <repo>/deploy/nginx/site.conf
//	callpop/upstream.conf  written here: the two nodes
//	callpop/listen.conf    written here: a free loopback port
func startNginx(t *testing.T, nginx, root, dir string, nodes ...*node) string {
	t.Helper()
	port := freePort(t)
	conf := filepath.Join(dir, "callpop")
	for _, d := range []string{conf, filepath.Join(dir, "logs"), filepath.Join(dir, "temp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "deploy", "nginx", "site.conf"), filepath.Join(conf, "site.conf")); err != nil {
		t.Fatal(err)
	}
	var upstream strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&upstream, "server %s max_fails=3 fail_timeout=2s;\n", n.addr)
	}
	writeFile(t, filepath.Join(conf, "upstream.conf"), upstream.String())
	writeFile(t, filepath.Join(conf, "listen.conf"), fmt.Sprintf("listen %s:%d;\n", proxyAddr, port))

	v, _ := exec.Command(nginx, "-V").CombinedOutput()
	var main strings.Builder
	fmt.Fprintf(&main, "daemon off;\nmaster_process on;\nworker_processes 1;\npid %s;\nerror_log %s notice;\n",
		filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"))
	if os.Geteuid() == 0 {
		// As root, workers would switch to nobody, who cannot enter the
		// test's private temp directory.
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&main, "user %s;\n", u.Username)
		}
	}
	main.WriteString("events { worker_connections 256; }\nhttp {\n")
	for _, m := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if m != "client_body" && m != "proxy" && bytes.Contains(v, []byte("--without-http_"+m+"_module")) {
			continue
		}
		fmt.Fprintf(&main, "    %s_temp_path %s;\n", m, filepath.Join(dir, "temp", m))
	}
	fmt.Fprintf(&main, "    include %s;\n", filepath.Join(root, "deploy", "nginx", "callpop.conf"))
	// The shipped log format, as docs/deploy.md tells operators to use it.
	fmt.Fprintf(&main, "    access_log %s callpop;\n}\n", filepath.Join(dir, "access.log"))
	mainConf := filepath.Join(dir, "nginx.conf")
	writeFile(t, mainConf, main.String())

	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", mainConf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\nnginx.conf:\n%s", err, out, main.String())
	}
	p := start(t, "nginx", filepath.Join(dir, "nginx.out"), exec.Command(nginx, "-p", dir, "-c", mainConf))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("--- nginx error.log:\n%s", tail(b, 4000))
		}
	})
	base := "http://" + proxyAddr + ":" + strconv.Itoa(port)
	waitFor(t, p, "nginx answering /healthz", func() bool {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return base
}

// session is one WebSocket through nginx, its frames read in the background.
type session struct {
	conn   *websocket.Conn
	frames chan map[string]any
	err    chan error // the read error that ended the session
}

// widgetToken mints login's widget token, as a CRM backend does.
func widgetToken(t *testing.T, login string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": login, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// socketTicket trades tok for a socket ticket through base, as widget.js does.
func socketTicket(t *testing.T, base, tok string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/ws-ticket", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/ws-ticket: %v", err)
	}
	defer res.Body.Close()
	var body struct {
		Ticket string `json:"ticket"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK || body.Ticket == "" {
		t.Fatalf("POST /api/ws-ticket: %d %v", res.StatusCode, err)
	}
	return body.Ticket
}

// dial opens login's socket through base as widget.js does: a ticket first,
// then the socket with the ticket in its URL.
func dial(t *testing.T, base, login string) *session {
	t.Helper()
	return dialQuery(t, base, "ticket="+socketTicket(t, base, widgetToken(t, login)))
}

// dialQuery opens a socket at base's /ws with query q.
func dialQuery(t *testing.T, base, q string) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?"+q, nil)
	if err != nil {
		t.Fatalf("dial through nginx: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	s := &session{conn: conn, frames: make(chan map[string]any, 64), err: make(chan error, 1)}
	go func() {
		defer close(s.frames)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				s.err <- err
				return
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				s.err <- fmt.Errorf("frame is not JSON: %s", data)
				return
			}
			s.frames <- f
		}
	}()
	return s
}

// expect reads the next frame and checks its type (and, for call frames,
// that it is andy's INCOMING on callid).
func (s *session) expect(t *testing.T, typ, callid string) {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatalf("session ended waiting for %s %s: %v", typ, callid, <-s.err)
		}
		if f["type"] != typ || f["user"] != "andy" {
			t.Fatalf("frame %v, want %s for andy", f, typ)
		}
		if typ == "call" && (f["event"] != "INCOMING" || f["callid"] != callid) {
			t.Fatalf("frame %v, want INCOMING on %s", f, callid)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s frame %s within 5 s", typ, callid)
	}
}

// closedWith waits for the session to end and returns its close code.
func (s *session) closedWith(t *testing.T) websocket.StatusCode {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if ok {
			t.Fatalf("frame %v, want the session closed", f)
		}
		return websocket.CloseStatus(<-s.err)
	case <-time.After(10 * time.Second):
		t.Fatal("session not closed within 10 s")
		return 0
	}
}

// postWebhook posts andy's INCOMING on callid through nginx as the PBX, with an
// X-Request-Id header when rid is set.
func postWebhook(t *testing.T, base, callid, rid string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"cmd": {"event"}, "type": {"INCOMING"}, "user": {"andy"}, "callid": {callid},
		"phone": {"79101234567"}, "crm_token": {testCRMToken}}
	return post(t, pbx, base+"/webhook", form.Encode(), rid)
}

func post(t *testing.T, c *http.Client, u, body, rid string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rid != "" {
		req.Header.Set("X-Request-Id", rid)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// waitFor polls ok for up to 10 s, failing early when p has exited.
func waitFor(t *testing.T, p *proc, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if p.exited() {
			t.Fatalf("%s exited waiting for %s", p.name, what)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// environWithout is the environment minus variables starting with prefix, so
// the developer's own CALLPOP_* settings do not leak into the nodes.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
