package main

// Browser tests: widget.js in a real headless Chromium, embedded in a CRM-like
// page that a real node serves, fed by real webhooks. They read the widget's
// DOM contract (widget.js header): [data-callid] cards with data-event and
// data-state, and the status dot .dot[data-status].

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/julienschmidt/httprouter"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/internal/redistest"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// browserWait bounds every wait for the page to reach a state.
	browserWait = 10 * time.Second
	// screenshotPath is docs/img/popup.png from cmd/callpop, the tests' working
	// directory; written only with -update.
	screenshotPath = "../../docs/img/popup.png"
	// The directory knows this number; node.event posts it by default.
	knownPhone     = "79101234567"
	knownPhoneText = "+7 910 123-45-67"
	knownContact   = "ООО Рога и Копыта"
	crmLinkTmpl    = "https://crm.example.com/c?phone={phone}"
)

// update rewrites the README's screenshot (docs/img/popup.png); tests never
// touch tracked files otherwise.
var update = flag.Bool("update", false, "rewrite docs/img/popup.png from TestBrowserIncomingShowsCardWithPhoneAndContact")

// startChromium starts one headless Chromium for t and returns the context of
// its first tab. Chromium and every goroutine chromedp started are gone when
// t's cleanups have run (the package's goleak TestMain checks).
func startChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no %s (scripts/test.sh installs chromium): %v", chromiumPath, err)
		}
		t.Fatalf("no %s on CI (scripts/test.sh installs chromium): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // tests run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		// The machine's network is closed: without these Chromium keeps
		// trying Google's hosts and can hang.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(900, 500),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	// Registered after t.TempDir, so it runs before the profile is removed.
	t.Cleanup(func() {
		bcancel() // the browser's own context: kills Chromium
		acancel() // and waits for the allocator's goroutines
	})
	// The first action starts the browser; it must not have a deadline.
	if _, err := chromedp.Run(bctx, chromedp.EmulateViewport(900, 500)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// newTab opens another tab in the browser of first, closed at test end
// (before the browser, cleanups being last-in first-out).
func newTab(t *testing.T, first context.Context) context.Context {
	t.Helper()
	ctx, _ := chromedp.NewContext(first)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = chromedp.Cancel(cctx) // closes the tab and waits for it
	})
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(900, 500)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// testPage is a CRM page that embeds the widget exactly as the README says.
var testPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme CRM — deals</title>
<style>
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;background:#f4f6fa;color:#222}
header{background:#243b6b;color:#fff;padding:12px 24px;font-weight:600;display:flex;justify-content:space-between}
main{padding:8px 24px}
table{border-collapse:collapse;width:500px;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.08)}
th,td{border-bottom:1px solid #e3e7ef;padding:8px 10px;text-align:left}
th{font-size:12px;text-transform:uppercase;color:#667}
</style>
{{if .Hostile}}<style>
/* A hostile host page: every element but the body vanishes, all text red. */
*:not(html):not(body){display:none !important;color:red !important}
body{color:red !important}
</style>{{end}}
</head><body>
<header><span>Acme CRM</span><span>{{.User}}</span></header>
<main>
<h2>Open deals</h2>
<table>
<tr><th>Client</th><th>Deal</th><th>Amount</th></tr>
<tr><td>ООО Рога и Копыта</td><td>Annual support</td><td>120 000 ₽</td></tr>
<tr><td>АО Северный ветер</td><td>Fleet tracking</td><td>340 000 ₽</td></tr>
<tr><td>ИП Петров А. В.</td><td>Website</td><td>45 000 ₽</td></tr>
</table>
</main>
{{if .Notify}}<script>
// A tab in the background whose user allowed notifications; every one it
// raises is recorded instead of shown.
window.__notes = [];
window.Notification = function (title) { window.__notes.push(title); this.close = function () {}; };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
Object.defineProperty(document, "hidden", { get: function () { return true; } });
</script>{{end}}
<script src="/widget.js"></script>
<script>CallPop.init({url: location.origin, token: {{.Token}}, crmLink: {{.CRMLink}}, lang: "en"{{if .Notify}}, notify: true{{end}}{{if .Refresh}},
  getToken: async () => (await fetch("/test-token?user={{.User}}")).text(){{end}}})</script>
</body></html>
`))

// serveToken serves /test-token?user=andy: a fresh token as plain text, what
// a CRM backend gives the widget's getToken. It counts its calls.
func serveToken(s *server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := s.jwt.Mint(r.URL.Query().Get("user"), time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tokensServed.Add(1)
		_, _ = w.Write([]byte(tok))
	}
}

var tokensServed atomic.Int64

// servePage serves /test-page?user=andy[&hostile=1][&notify=1][&ttl=2s],
// minting the user's token on the server, as a CRM backend would; with ttl
// the token is short and the page's getToken fetches fresh ones.
func servePage(s *server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		ttl, err := time.ParseDuration(r.URL.Query().Get("ttl"))
		if err != nil {
			ttl = time.Hour
		}
		tok, err := s.jwt.Mint(user, ttl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = testPage.Execute(w, map[string]any{
			"User": user, "Token": tok, "CRMLink": crmLinkTmpl, "Hostile": r.URL.Query().Get("hostile") != "",
			"Notify": r.URL.Query().Get("notify") != "", "Refresh": r.URL.Query().Has("ttl"),
		})
	}
}

// browserConfig is testConfig with a drain long enough for a page's node: a
// browser keeps a preconnected socket that sends no request, and net/http's
// Shutdown waits 5 s for it (see TestBrowserNodeStopClosesTheWidgetSocketWith1012AtOnce).
func browserConfig(t *testing.T, args ...string) *config {
	t.Helper()
	cfg := testConfig(t, args...)
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

// startPageNode runs a node like startNode, but on addr ("127.0.0.1:0" for
// any free port), with the test directory, the test page at /test-page and
// the embedding test page at /embed-page (browser_embed_test.go).
// A busy addr (a node that just stopped there) is retried for a few seconds.
func startPageNode(t *testing.T, cfg *config, addr string) *node {
	t.Helper()
	dir, err := contacts.Load(strings.NewReader("phone,name,responsible\n" + knownPhone + "," + knownContact + ",andy\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(cfg, zaptest.NewLogger(t), serverOptions{directory: dir, routes: func(s *server, r *httprouter.Router) {
		r.HandlerFunc(http.MethodGet, "/test-page", servePage(s))
		r.HandlerFunc(http.MethodGet, "/test-token", serveToken(s))
		r.HandlerFunc(http.MethodGet, "/embed-page", serveEmbedPage(s))
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			s.close()
			t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := serveNode(t, s, ln)
	return n
}

// cardView is one popup card as the page shows it.
type cardView struct {
	CallID  string  `json:"callid"`
	Event   string  `json:"event"`
	State   string  `json:"state"`
	Text    string  `json:"text"`
	Href    string  `json:"href"`    // the "open in CRM" link
	Visible bool    `json:"visible"` // checkVisibility(): rendered, not display:none anywhere up the tree
	W       float64 `json:"w"`
	H       float64 `json:"h"`
}

// widgetView is what the widget shows: the status dot and the cards, top first.
type widgetView struct {
	Found  bool       `json:"found"` // the <callpop-widget> element with its shadow root
	Status string     `json:"status"`
	Title  string     `json:"title"`
	Note   string     `json:"note"`
	Cards  []cardView `json:"cards"`
}

func (v widgetView) card(callid string) *cardView {
	for i := range v.Cards {
		if v.Cards[i].CallID == callid {
			return &v.Cards[i]
		}
	}
	return nil
}

func (v widgetView) String() string {
	b, _ := json.Marshal(v)
	return string(b)
}

const readWidgetJS = `(() => {
  const r = document.querySelector('callpop-widget')?.shadowRoot;
  if (!r) return {found: false, cards: []};
  const dot = r.querySelector('.dot'), note = r.querySelector('.note');
  return {
    found: true,
    status: dot?.dataset.status || '',
    title: dot?.title || '',
    note: note?.textContent || '',
    cards: [...r.querySelectorAll('[data-callid]')].map((c) => {
      const b = c.getBoundingClientRect();
      return {callid: c.dataset.callid, event: c.dataset.event, state: c.dataset.state, text: c.textContent,
        href: c.querySelector('a.crm')?.href || '', visible: c.checkVisibility(), w: b.width, h: b.height};
    }),
  };
})()`

// page is one tab showing the test page for one user.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// openPage navigates tab to n's test page for user and waits until the
// widget is connected (dot live).
func openPage(t *testing.T, tab context.Context, n *node, user, query string) *page {
	t.Helper()
	p := &page{t: t, ctx: tab, name: user}
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	u := n.base + "/test-page?user=" + user + query
	if _, err := chromedp.Run(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("%s: open %s: %v", user, u, err)
	}
	p.waitFor("widget live", browserWait, func(v widgetView) bool { return v.Status == "live" })
	return p
}

// eval runs a JS expression in the page and decodes its value.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// view reads the widget's DOM.
func (p *page) view() widgetView {
	p.t.Helper()
	v, err := eval[widgetView](p, readWidgetJS)
	if err != nil {
		p.t.Fatalf("%s: read widget: %v", p.name, err)
	}
	return v
}

// waitFor polls the widget until ok holds, failing after timeout with what
// the page last showed.
func (p *page) waitFor(what string, timeout time.Duration, ok func(widgetView) bool) widgetView {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := p.view()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %s within %v; the widget shows %v", p.name, what, timeout, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCard waits until callid's card shows event (and state, when not empty).
func (p *page) waitCard(callid, event, state string) cardView {
	p.t.Helper()
	v := p.waitFor(fmt.Sprintf("card %s %s %s", callid, event, state), browserWait, func(v widgetView) bool {
		c := v.card(callid)
		return c != nil && c.Event == event && (state == "" || c.State == state)
	})
	return *v.card(callid)
}

// waitNoCard waits until callid's card is gone.
func (p *page) waitNoCard(callid string) widgetView {
	p.t.Helper()
	return p.waitFor("card "+callid+" removed", browserWait, func(v widgetView) bool { return v.card(callid) == nil })
}

// TestBrowserIncomingShowsCardWithPhoneAndContact also follows the call to
// its end, and with -update takes docs/img/popup.png (the README names this
// test).
func TestBrowserIncomingShowsCardWithPhoneAndContact(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	// No entry animation, so the screenshot shows the card as it settles.
	if _, err := chromedp.Call(tab, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
	}); err != nil {
		t.Fatal(err)
	}
	p := openPage(t, tab, n, "andy", "")
	if v := p.view(); len(v.Cards) != 0 {
		t.Fatalf("cards before any call: %v", v)
	}

	n.event("INCOMING", "andy", "c1", "direction", "in")
	c := p.waitCard("c1", "INCOMING", "ring")
	for _, want := range []string{knownPhoneText, knownContact, "Incoming call", "Responsible: andy"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("INCOMING card text %q lacks %q", c.Text, want)
		}
	}
	if want := "https://crm.example.com/c?phone=" + knownPhone; c.Href != want {
		t.Errorf("CRM link %q, want %q", c.Href, want)
	}
	if !c.Visible || c.W < 100 || c.H < 50 {
		t.Errorf("INCOMING card not visibly rendered: %+v", c)
	}
	saveScreenshot(t, tab)

	n.event("ACCEPTED", "andy", "c1")
	c = p.waitCard("c1", "ACCEPTED", "talk")
	if !strings.Contains(c.Text, "In call") || !strings.Contains(c.Text, knownPhoneText) {
		t.Errorf("ACCEPTED card text %q", c.Text)
	}

	n.event("COMPLETED", "andy", "c1")
	if v := p.waitNoCard("c1"); len(v.Cards) != 0 || v.Status != "live" {
		t.Fatalf("after COMPLETED the widget shows %v", v)
	}
}

// saveScreenshot writes the page as it is now to docs/img/popup.png, with
// -update only: `go test ./cmd/callpop -run TestBrowserIncomingShowsCardWithPhoneAndContact -update`.
func saveScreenshot(t *testing.T, tab context.Context) {
	t.Helper()
	if !*update {
		return
	}
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 900 || cfg.Height != 500 {
		t.Fatalf("screenshot is not a 900x500 PNG: %+v, %v", cfg, err)
	}
	if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserGroupCallAnsweredByOneLeavesOnlyTheirCard(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	first := startChromium(t)
	users := []string{"andy", "mike", "daria"}
	pages := map[string]*page{}
	for i, u := range users {
		tab := first
		if i > 0 {
			tab = newTab(t, first)
		}
		pages[u] = openPage(t, tab, n, u, "")
	}

	for _, u := range users {
		n.event("INCOMING", u, "g1", "groupRealName", "Sales")
	}
	for _, u := range users {
		c := pages[u].waitCard("g1", "INCOMING", "ring")
		if !strings.Contains(c.Text, knownPhoneText) || !strings.Contains(c.Text, "Department: Sales") {
			t.Errorf("%s: card text %q", u, c.Text)
		}
	}

	n.event("ACCEPTED", "mike", "g1")
	pages["mike"].waitCard("g1", "ACCEPTED", "talk")
	for _, u := range []string{"andy", "daria"} {
		// The card goes at once and a note says who answered (for 3 s).
		pages[u].waitFor("g1 gone with an 'answered by mike' note", browserWait, func(v widgetView) bool {
			return v.card("g1") == nil && strings.Contains(v.Note, "Answered by mike")
		})
	}
	if v := pages["mike"].view(); v.card("g1") == nil || v.card("g1").Event != "ACCEPTED" {
		t.Fatalf("mike's card after the others closed: %v", v)
	}
}

// watchStatus records every title the status dot takes from now on
// ("Reconnecting: server restart (1012)", …): a close is followed at once by
// refused reconnects, too fast for polling to see.
func (p *page) watchStatus() {
	p.t.Helper()
	if _, err := eval[chromedp.Void](p, `(() => {
  const dot = document.querySelector('callpop-widget').shadowRoot.querySelector('.dot');
  window.__statuses = [];
  new MutationObserver(() => window.__statuses.push(dot.title)).observe(dot, {attributes: true, attributeFilter: ['title']});
})()`); err != nil {
		p.t.Fatalf("%s: watch status: %v", p.name, err)
	}
}

// statuses waits for the first status recorded since watchStatus and returns
// all recorded so far.
func (p *page) statuses(timeout time.Duration) []string {
	p.t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		st, err := eval[[]string](p, `window.__statuses`)
		if err != nil {
			p.t.Fatalf("%s: read statuses: %v", p.name, err)
		}
		if len(st) > 0 {
			return st
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: status unchanged for %v; the widget shows %v", p.name, timeout, p.view())
		}
	}
}

func TestBrowserWidgetReconnectsAfterNodeRestartAndShowsWhatChangedMeanwhile(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startPageNode(t, browserConfig(t, "--redis-url", rs.URL()), "127.0.0.1:0")
	addr := strings.TrimPrefix(a.base, "http://")
	b := startPageNode(t, browserConfig(t, "--redis-url", rs.URL()), "127.0.0.1:0")
	tab := startChromium(t)
	p := openPage(t, tab, a, "andy", "")

	a.event("INCOMING", "andy", "c1")
	p.waitCard("c1", "INCOMING", "ring")

	p.watchStatus()
	a.stop() // the page's node goes away (how its socket closes: the test below)
	if st := p.statuses(browserWait); !strings.HasPrefix(st[0], "Reconnecting") {
		t.Fatalf("statuses after the node stopped: %q", st)
	}

	// While the page's node is down, the call ends and another rings,
	// through the other node.
	b.event("COMPLETED", "andy", "c1")
	b.event("INCOMING", "andy", "c2", "phone", "74957654321")
	if v := p.view(); v.Status == "live" || v.card("c1") == nil {
		t.Fatalf("while the node is down the widget shows %v", v)
	}

	startPageNode(t, browserConfig(t, "--redis-url", rs.URL()), addr)
	// Full-jitter back-off (base 500 ms, cap 30 s): the attempts that failed
	// while the node was down make the next one up to seconds away.
	p.waitFor("reconnect to the restarted node", 20*time.Second, func(v widgetView) bool { return v.Status == "live" })
	v := p.waitFor("c1 gone and c2 ringing", browserWait, func(v widgetView) bool {
		c := v.card("c2")
		return v.card("c1") == nil && c != nil && c.Event == "INCOMING" && c.State == "ring"
	})
	if len(v.Cards) != 1 || !strings.Contains(v.Cards[0].Text, "+7 495 765-43-21") {
		t.Fatalf("after the restart the widget shows %v", v)
	}
}

func TestBrowserNodeStopClosesTheWidgetSocketWith1012AtOnce(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	p := openPage(t, tab, n, "andy", "")
	p.watchStatus()
	// A connection that sends no request, as Chromium's preconnect leaves
	// one (seen here: a second socket on page load, never used). net/http's
	// Shutdown waits 5 s before it counts such a socket as idle.
	idle, err := net.Dial("tcp", strings.TrimPrefix(n.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	began := time.Now()
	stopped := make(chan struct{})
	go func() { defer close(stopped); n.stop() }()
	defer func() { <-stopped }()
	st := p.statuses(browserWait)
	took := time.Since(began)
	t.Logf("first status %v after the drain began: %q", took.Round(time.Millisecond), st[0])
	if !strings.Contains(st[0], "server restart (1012)") || took > 2*time.Second {
		t.Fatalf("after %v the widget's status went %q, want 'Reconnecting: server restart (1012)' at once", took, st)
	}
}

func TestBrowserCardShowsOnAHostPageWithHostileCSS(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	p := openPage(t, tab, n, "andy", "&hostile=1")
	// The hostile rules do apply to the page itself.
	hidden, err := eval[bool](p, `getComputedStyle(document.querySelector('main')).display === 'none'`)
	if err != nil || !hidden {
		t.Fatalf("hostile CSS not applied to the host page: %v %v", hidden, err)
	}

	n.event("INCOMING", "andy", "c1")
	c := p.waitCard("c1", "INCOMING", "ring")
	color, err := eval[string](p, `getComputedStyle(document.querySelector('callpop-widget').shadowRoot.querySelector('.phone')).color`)
	if err != nil || color == "rgb(255, 0, 0)" {
		t.Fatalf("the page's color reached the card: %q %v", color, err)
	}
	if !c.Visible || c.W < 100 || c.H < 50 {
		display, _ := eval[string](p, `getComputedStyle(document.querySelector('callpop-widget')).display`)
		t.Fatalf("card not visible on a hostile page: %+v (host display %q)", c, display)
	}
}

// TestBrowserOnlyOneTabRaisesTheNotification: three background tabs of one
// manager all show the card, but exactly one raises the desktop notification
// (the tabs agree over BroadcastChannel), for each call.
func TestBrowserOnlyOneTabRaisesTheNotification(t *testing.T) {
	t.Parallel()
	first := startChromium(t)
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	var pages []*page
	for i := range 3 {
		tab := first
		if i > 0 {
			tab = newTab(t, first)
		}
		pages = append(pages, openPage(t, tab, n, "andy", "&notify=1"))
	}
	notes := func() int {
		total := 0
		for _, p := range pages {
			k, err := eval[int](p, `window.__notes.length`)
			if err != nil {
				t.Fatalf("read notifications: %v", err)
			}
			total += k
		}
		return total
	}
	for i, callid := range []string{"n1", "n2"} {
		n.event("INCOMING", "andy", callid)
		for _, p := range pages {
			p.waitCard(callid, "INCOMING", "ring")
		}
		want := i + 1
		deadline := time.Now().Add(browserWait)
		for notes() < want {
			if time.Now().After(deadline) {
				t.Fatalf("call %s: %d notifications in all, want %d", callid, notes(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second) // well past the tabs' 250 ms claim window: a second tab would have rung by now
		if got := notes(); got != want {
			t.Fatalf("after call %s: %d notifications across 3 tabs, want %d", callid, got, want)
		}
	}
}

// TestBrowserExpiredTokenIsReplacedThroughGetToken: the page's token lives
// two seconds; when the server closes the socket at expiry (4001) the widget
// fetches a fresh one through getToken, reconnects, and popups keep coming.
func TestBrowserExpiredTokenIsReplacedThroughGetToken(t *testing.T) {
	t.Parallel()
	tab := startChromium(t)
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	before := tokensServed.Load()
	p := openPage(t, tab, n, "andy", "&ttl=2s")
	deadline := time.Now().Add(browserWait)
	for tokensServed.Load() == before { // the session was closed at expiry and getToken ran
		if time.Now().After(deadline) {
			t.Fatalf("getToken never called; the widget shows %v", p.view())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.waitFor("widget live again", browserWait, func(v widgetView) bool { return v.Status == "live" })
	n.event("INCOMING", "andy", "after-refresh")
	p.waitCard("after-refresh", "INCOMING", "ring")
}
