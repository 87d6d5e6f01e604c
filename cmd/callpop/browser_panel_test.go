package main

// Browser tests of the widget's panel and click-to-call (widget.js and
// panel.js in headless Chromium, against a node wired to the simulated PBX of
// pbx/sim). They click with the mouse, as a person does, and read the DOM
// contract of the headers of widget.js and panel.js: button.open with its
// .badge, the .panel with its switches [data-dnd] and [data-group=<id>], the
// recent calls [data-record=<callid>] (data-missed, data-seen, button.seen),
// button.allseen, and the cards' button.callback.
//
// The simulated PBX plays a makeCall with a Step of 1 ms: OUTGOING, ACCEPTED
// and COMPLETED follow one another faster than the DOM can be polled, so the
// test page records every frame (onEvent) and every card that appeared (a
// MutationObserver), and the tests wait for what stays: the call's record.

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/julienschmidt/httprouter"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/pbx/sim"
)

// panelTestPage is a CRM client page: a tel: link, the widget with telLinks
// when asked (?tel=1), and recorders of the frames and the cards.
var panelTestPage = template.Must(template.New("panel-page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme CRM — client</title>
<style>body{margin:0;padding:16px 24px;font:15px/1.45 system-ui,sans-serif;background:#f4f6fa;color:#222}</style>
</head><body>
<h1>ООО Рога и Копыта</h1>
<p>Phone: <a id="tel" href="tel:+79101234567">+7 910 123-45-67</a></p>
<script src="/widget.js"></script>
<script>
window.__frames = [];
window.__cards = [];
CallPop.init({url: location.origin, token: {{.Token}}, crmLink: {{.CRMLink}}, lang: "en", telLinks: {{.TelLinks}},
  onEvent: function (f) { window.__frames.push(f); }});
new MutationObserver(function (ms) {
  for (const m of ms) for (const n of m.addedNodes) {
    if (n.dataset && n.dataset.callid) window.__cards.push({callid: n.dataset.callid, event: n.dataset.event, state: n.dataset.state});
  }
}).observe(document.querySelector('callpop-widget').shadowRoot, {childList: true, subtree: true});
</script>
</body></html>
`))

// startPanelNode is startPageNode wired to a simulated PBX as withSimPBXURL
// wires startNode (accounts andy and mike, both in department sales), serving
// panelTestPage at /panel-page?user=andy[&tel=1].
func startPanelNode(t *testing.T) (*node, *sim.PBX) {
	t.Helper()
	var h atomic.Pointer[sim.PBX]
	pbxSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().ServeHTTP(w, r) }))
	t.Cleanup(pbxSrv.Close)

	cfg := browserConfig(t, "--pbx-url", pbxSrv.URL+"/sys/crm_api.wcgp", "--pbx-token", simToken)
	dir, err := contacts.Load(strings.NewReader("phone,name,responsible\n" + knownPhone + "," + knownContact + ",andy\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(cfg, zaptest.NewLogger(t), serverOptions{directory: dir, routes: func(s *server, r *httprouter.Router) {
		r.HandlerFunc(http.MethodGet, "/panel-page", func(w http.ResponseWriter, r *http.Request) {
			tok, err := s.jwt.Mint(r.URL.Query().Get("user"), time.Hour)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = panelTestPage.Execute(w, map[string]any{
				"Token": tok, "CRMLink": crmLinkTmpl, "TelLinks": r.URL.Query().Get("tel") != "",
			})
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		t.Fatal(err)
	}
	n := serveNode(t, s, ln)

	p := sim.New(sim.Config{
		Token: simToken, CRMURL: n.base + "/webhook", CRMToken: testCRMToken, Step: time.Millisecond,
		Accounts: []sim.Account{{Name: "andy", Ext: "701"}, {Name: "mike", Ext: "702"}},
		Groups:   []sim.Group{{ID: "sales", RealName: "Sales", Members: []string{"andy", "mike"}}},
	}, zaptest.NewLogger(t))
	t.Cleanup(p.Close) // before the node stops: the calls it plays post to it
	h.Store(p)
	return n, p
}

// openPanelPage opens the panel test page for user in tab and waits until
// the widget is live.
func openPanelPage(t *testing.T, tab context.Context, n *node, user string, telLinks bool) *page {
	t.Helper()
	p := &page{t: t, ctx: tab, name: user}
	u := n.base + "/panel-page?user=" + user
	if telLinks {
		u += "&tel=1"
	}
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("%s: open %s: %v", user, u, err)
	}
	p.waitFor("widget live", browserWait, func(v widgetView) bool { return v.Status == "live" })
	return p
}

// inWidget is a JS expression for the first element matching sel in the
// widget's shadow root (null when there is none).
func inWidget(sel string) string {
	q, _ := json.Marshal(sel)
	return `document.querySelector('callpop-widget')?.shadowRoot?.querySelector(` + string(q) + `)`
}

// recordSel selects the panel's entry of callid.
func recordSel(callid string) string {
	q, _ := json.Marshal(callid)
	return `[data-record=` + string(q) + `]`
}

// clickTarget is where clickJS found an element to click, or why not.
type clickTarget struct {
	OK  bool    `json:"ok"`
	Why string  `json:"why"`
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
}

// clickJS (with the element's expression) scrolls the element into view and
// finds its centre, making sure it is enabled, rendered and not covered.
const clickJS = `((el) => {
  if (!el || !el.isConnected) return {ok: false, why: 'no such element'};
  if (el.disabled) return {ok: false, why: 'disabled: ' + (el.title || '')};
  if (!el.checkVisibility()) return {ok: false, why: 'not rendered'};
  el.scrollIntoView({block: 'center', inline: 'center'});
  const b = el.getBoundingClientRect(), x = b.left + b.width / 2, y = b.top + b.height / 2;
  const hit = el.getRootNode().elementFromPoint(x, y);
  if (!hit || !(hit === el || el.contains(hit))) return {ok: false, why: 'covered by ' + (hit ? hit.outerHTML.slice(0, 120) : 'nothing')};
  return {ok: true, x, y};
})(%s)`

// mouseClick waits until the element expr evaluates to can be clicked, then
// clicks its centre with the mouse (pointer and mouse events, as a person).
func (p *page) mouseClick(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		c, err := eval[clickTarget](p, fmt.Sprintf(clickJS, expr))
		if err != nil {
			p.t.Fatalf("%s: find %s: %v", p.name, what, err)
		}
		if c.OK {
			ctx, cancel := context.WithTimeout(p.ctx, browserWait)
			defer cancel()
			if _, err := chromedp.Run(ctx, chromedp.MouseClickXY(c.X, c.Y)); err != nil {
				p.t.Fatalf("%s: click %s: %v", p.name, what, err)
			}
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: cannot click %s within %v: %s; the panel shows %v", p.name, what, browserWait, c.Why, p.readPanel())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// switchView is one of the panel's switches.
type switchView struct {
	Checked  string `json:"checked"` // aria-checked
	Disabled bool   `json:"disabled"`
	Busy     bool   `json:"busy"` // aria-disabled: the change is in flight
	Title    string `json:"title"`
}

// settled reports whether the switch shows a state the server confirmed.
func (s *switchView) settled(checked string) bool {
	return s != nil && !s.Disabled && !s.Busy && s.Checked == checked
}

// recordView is one of the panel's recent calls.
type recordView struct {
	CallID  string `json:"callid"`
	Missed  string `json:"missed"`
	Seen    string `json:"seen"`
	Hidden  bool   `json:"hidden"`
	SeenBtn bool   `json:"seenBtn"`
	Text    string `json:"text"`
}

// panelView is the panel button, its badge and the panel as the page shows them.
type panelView struct {
	Found       bool                   `json:"found"`
	Badge       string                 `json:"badge"`
	BadgeShown  bool                   `json:"badgeShown"`
	Expanded    string                 `json:"expanded"` // button.open's aria-expanded
	Open        bool                   `json:"open"`     // .panel there and shown
	DND         *switchView            `json:"dnd"`
	Groups      map[string]*switchView `json:"groups"`
	Records     []recordView           `json:"records"`
	AllSeenShow bool                   `json:"allSeenShown"`
	Msg         string                 `json:"msg"`
	Off         string                 `json:"off"`
	Note        string                 `json:"note"`
}

func (v panelView) record(callid string) *recordView {
	for i := range v.Records {
		if v.Records[i].CallID == callid {
			return &v.Records[i]
		}
	}
	return nil
}

func (v panelView) String() string {
	b, _ := json.Marshal(v)
	return string(b)
}

const readPanelJS = `(() => {
  const r = document.querySelector('callpop-widget')?.shadowRoot;
  if (!r) return {found: false};
  const badge = r.querySelector('button.open .badge'), p = r.querySelector('.panel');
  const sw = (s) => s && {checked: s.getAttribute('aria-checked') || '', disabled: s.disabled,
    busy: s.getAttribute('aria-disabled') === 'true', title: s.title};
  const all = p?.querySelector('button.allseen');
  return {
    found: true,
    badge: badge?.textContent || '',
    badgeShown: !!badge && !badge.hidden && badge.checkVisibility(),
    expanded: r.querySelector('button.open')?.getAttribute('aria-expanded') || '',
    open: !!p && !p.hidden && p.checkVisibility(),
    dnd: sw(r.querySelector('[data-dnd]')),
    groups: Object.fromEntries([...r.querySelectorAll('[data-group]')].map((g) => [g.dataset.group, sw(g)])),
    records: [...r.querySelectorAll('[data-record]')].map((li) => ({callid: li.dataset.record,
      missed: li.dataset.missed || '', seen: li.dataset.seen || '', hidden: li.hidden,
      seenBtn: !!li.querySelector('button.seen'), text: li.textContent})),
    allSeenShown: !!all && !all.hidden && all.checkVisibility(),
    msg: p?.querySelector('.msg')?.textContent || '',
    off: p?.querySelector('.off')?.textContent || '',
    note: r.querySelector('.note')?.textContent || '',
  };
})()`

// readPanel reads the panel button, the badge and the panel.
func (p *page) readPanel() panelView {
	p.t.Helper()
	v, err := eval[panelView](p, readPanelJS)
	if err != nil {
		p.t.Fatalf("%s: read panel: %v", p.name, err)
	}
	return v
}

// waitPanel polls the panel until ok holds, failing after browserWait with
// what the page last showed.
func (p *page) waitPanel(what string, ok func(panelView) bool) panelView {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		v := p.readPanel()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %s within %v; the panel shows %v", p.name, what, browserWait, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openPanelAndWait clicks the panel button and waits for the panel with its DND
// switch's state known.
func (p *page) openPanelAndWait() panelView {
	p.t.Helper()
	p.mouseClick("the panel button", inWidget("button.open"))
	return p.waitPanel("open panel with the DND state", func(v panelView) bool {
		return v.Open && v.Expanded == "true" && v.DND != nil && !v.DND.Disabled
	})
}

// onEventFrames returns the frames the widget handed to onEvent so far.
func (p *page) onEventFrames() []map[string]any {
	p.t.Helper()
	fs, err := eval[[]map[string]any](p, `window.__frames`)
	if err != nil {
		p.t.Fatalf("%s: read frames: %v", p.name, err)
	}
	return fs
}

// waitOnEventFrame waits for a frame that ok accepts and returns it.
func (p *page) waitOnEventFrame(what string, ok func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		fs := p.onEventFrames()
		if i := slices.IndexFunc(fs, ok); i >= 0 {
			return fs[i]
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(fs)
			p.t.Fatalf("%s: no %s within %v; frames so far: %s", p.name, what, browserWait, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cardsShown lists every card the widget ever put on screen, in order.
func (p *page) cardsShown() []map[string]string {
	p.t.Helper()
	cs, err := eval[[]map[string]string](p, `window.__cards`)
	if err != nil {
		p.t.Fatalf("%s: read cards: %v", p.name, err)
	}
	return cs
}

// outgoingFrameOf accepts the OUTGOING call frame of any call but except.
func outgoingFrameOf(except string) func(map[string]any) bool {
	return func(f map[string]any) bool {
		return f["type"] == "call" && f["event"] == "OUTGOING" && f["callid"] != except
	}
}

// checkPlayedFor requires the simulated PBX's record of callid to be an
// outgoing call of user to phone.
func checkPlayedFor(t *testing.T, p *sim.PBX, callid, user, phone string) {
	t.Helper()
	for _, r := range p.History() {
		if r.UID == callid {
			if r.Account != user || r.Type != "out" || r.Client != phone {
				t.Errorf("the PBX played %+v, want an outgoing call of %s to %s", r, user, phone)
			}
			return
		}
	}
	t.Errorf("the PBX has no record of %s: %+v", callid, p.History())
}

// recentCallIDs lists user's recent calls through the page API.
func recentCallIDs(n *node, user string) (ids []string, unseen float64) {
	n.t.Helper()
	st, body := n.api(user, http.MethodGet, "/api/calls", "")
	if st != http.StatusOK {
		n.t.Fatalf("GET /api/calls as %s: %d %v", user, st, body)
	}
	calls, _ := body["calls"].([]any)
	for _, c := range calls {
		m, _ := c.(map[string]any)
		ids = append(ids, fmt.Sprint(m["callid"]))
	}
	unseen, _ = body["unseen_missed"].(float64)
	return ids, unseen
}

func TestBrowserPanelCallBackOnAMissedCardCallsAsTheTokensUserAndListsTheCallWhenItEnds(t *testing.T) {
	t.Parallel()
	n, pbx := startPanelNode(t)
	tab := startChromium(t)
	p := openPanelPage(t, tab, n, "andy", false)

	// A missed card offers call back (for ~4 s, widget.js MISSED_MS).
	n.event("INCOMING", "andy", "c1", "direction", "in")
	p.waitCard("c1", "INCOMING", "ring")
	n.event("CANCELLED", "andy", "c1")
	p.waitCard("c1", "CANCELLED", "missed")
	callback := inWidget(`[data-callid="c1"] button.callback`)
	p.mouseClick("c1's call back", callback)

	// OUTGOING, ACCEPTED, COMPLETED and the record follow 1 ms apart.
	f := p.waitOnEventFrame("OUTGOING frame of the call placed", outgoingFrameOf("c1"))
	out, _ := f["callid"].(string)
	if f["user"] != "andy" || f["direction"] != "out" || f["phone"] != knownPhone {
		t.Errorf("OUTGOING frame %v, want andy's outgoing call to %s", f, knownPhone)
	}
	// The card's button is usable again once the call was placed (while
	// the missed card is still up).
	p.waitFor("c1's call back enabled again", browserWait, func(widgetView) bool {
		dis, err := eval[bool](p, callback+`?.disabled ?? 'gone'`)
		return err == nil && !dis
	})
	if !slices.ContainsFunc(p.cardsShown(), func(c map[string]string) bool {
		return c["callid"] == out && c["event"] == "OUTGOING" && c["state"] == "out"
	}) {
		t.Errorf("no OUTGOING card for %s was shown; cards shown: %v", out, p.cardsShown())
	}
	p.waitFor("the OUTGOING card gone after COMPLETED", browserWait, func(v widgetView) bool {
		return v.card(out) == nil && slices.ContainsFunc(p.onEventFrames(), func(f map[string]any) bool {
			return f["type"] == "call" && f["event"] == "COMPLETED" && f["callid"] == out
		})
	})

	p.openPanelAndWait()
	pv := p.waitPanel("the call's record in recent calls", func(v panelView) bool { return v.record(out) != nil })
	r := pv.record(out)
	if r.Missed != "false" || r.Hidden || !strings.Contains(r.Text, "Outgoing") || !strings.Contains(r.Text, knownPhoneText) {
		t.Errorf("record of the call back: %+v", r)
	}
	if pv.Records[0].CallID != out {
		t.Errorf("the call back is not the newest record: %v", pv)
	}
	checkPlayedFor(t, pbx, out, "andy", knownPhone)
	if ids, _ := recentCallIDs(n, "andy"); !slices.Equal(ids, []string{out}) {
		t.Errorf("andy's recent calls %v, want [%s]", ids, out)
	}
	if ids, _ := recentCallIDs(n, "mike"); len(ids) != 0 {
		t.Errorf("mike's recent calls %v: the call went to the wrong user", ids)
	}
}

func TestBrowserPanelDNDSwitchTurnsDNDOnAndOffForTheTokensUserOnly(t *testing.T) {
	t.Parallel()
	n, pbx := startPanelNode(t)
	tab := startChromium(t)
	p := openPanelPage(t, tab, n, "andy", false)

	if v := p.openPanelAndWait(); !v.DND.settled("false") {
		t.Fatalf("DND before any change: %v", v)
	}
	dnd := inWidget("[data-dnd]")
	p.mouseClick("the DND switch", dnd)
	p.waitPanel("DND on, confirmed", func(v panelView) bool { return v.DND.settled("true") })
	if !pbx.DND("andy") || pbx.DND("mike") {
		t.Fatalf("after switching DND on: andy %v, mike %v; want andy's only", pbx.DND("andy"), pbx.DND("mike"))
	}

	p.mouseClick("the DND switch", dnd)
	v := p.waitPanel("DND off, confirmed", func(v panelView) bool { return v.DND.settled("false") })
	if pbx.DND("andy") || pbx.DND("mike") {
		t.Fatalf("after switching DND off: andy %v, mike %v", pbx.DND("andy"), pbx.DND("mike"))
	}
	if v.Msg != "" || v.Off != "" {
		t.Errorf("the panel reports an error: %v", v)
	}

	// The panel reads the PBX's state when it opens: DND turned on
	// elsewhere (another device) shows on.
	p.mouseClick("the panel button (close)", inWidget("button.open"))
	p.waitPanel("panel closed", func(v panelView) bool { return !v.Open && v.Expanded == "false" })
	if st, body := n.api("andy", http.MethodPut, "/api/dnd", `{"state":true}`); st != http.StatusOK {
		t.Fatalf("set dnd: %d %v", st, body)
	}
	p.mouseClick("the panel button", inWidget("button.open"))
	p.waitPanel("DND shown on after reopening", func(v panelView) bool { return v.Open && v.DND.settled("true") })
}

func TestBrowserPanelMissedCallsBadgeAndMarkSeenReachEveryTab(t *testing.T) {
	t.Parallel()
	n, _ := startPanelNode(t)
	first := startChromium(t)
	tab1 := openPanelPage(t, first, n, "andy", false)
	tab2 := openPanelPage(t, newTab(t, first), n, "andy", false)
	tab2.name = "andy (tab 2)"
	tabs := []*page{tab1, tab2}

	start := time.Now().UTC().Format("20060102T150405Z")
	for _, id := range []string{"m1", "m2"} {
		if st, body := n.post("cmd", "history", "type", "in", "user", "andy", "phone", knownPhone, "start", start,
			"duration", "0", "callid", id, "status", "Missed"); st != http.StatusOK {
			t.Fatalf("history %s: %d %v", id, st, body)
		}
	}
	badge := func(want string) func(panelView) bool {
		return func(v panelView) bool {
			if want == "" {
				return !v.BadgeShown
			}
			return v.BadgeShown && v.Badge == want
		}
	}
	for _, p := range tabs {
		p.waitPanel("badge 2", badge("2"))
	}

	// Tab 2's panel is open too: its list follows the seen frames.
	for _, p := range []*page{tab2, tab1} {
		p.openPanelAndWait()
		v := p.waitPanel("m1 and m2 missed, unseen", func(v panelView) bool {
			m1, m2 := v.record("m1"), v.record("m2")
			return m1 != nil && m2 != nil && m1.Missed == "true" && m1.Seen == "false" && m1.SeenBtn &&
				m2.Missed == "true" && m2.Seen == "false" && m2.SeenBtn && v.AllSeenShow
		})
		if r := v.record("m1"); !strings.Contains(r.Text, "Missed") || !strings.Contains(r.Text, knownPhoneText) {
			t.Errorf("%s: m1's entry %+v", p.name, r)
		}
	}

	tab1.mouseClick("m1's mark seen", inWidget(recordSel("m1")+" button.seen"))
	for _, p := range tabs {
		p.waitPanel("badge 1, m1 seen, m2 not", func(v panelView) bool {
			m1, m2 := v.record("m1"), v.record("m2")
			return badge("1")(v) && m1 != nil && m1.Seen == "true" && !m1.SeenBtn &&
				m2 != nil && m2.Seen == "false" && m2.SeenBtn && v.AllSeenShow
		})
	}
	if _, unseen := recentCallIDs(n, "andy"); unseen != 1 {
		t.Fatalf("unseen missed calls on the server after marking m1: %v", unseen)
	}

	tab1.mouseClick("mark all seen", inWidget(".panel button.allseen"))
	for _, p := range tabs {
		v := p.waitPanel("badge hidden, every call seen", func(v panelView) bool {
			m1, m2 := v.record("m1"), v.record("m2")
			return badge("")(v) && !v.AllSeenShow && m1 != nil && m1.Seen == "true" && !m1.SeenBtn &&
				m2 != nil && m2.Seen == "true" && !m2.SeenBtn
		})
		if v.Badge != "0" && v.Badge != "" {
			t.Errorf("%s: hidden badge reads %q", p.name, v.Badge)
		}
	}
	if _, unseen := recentCallIDs(n, "andy"); unseen != 0 {
		t.Fatalf("unseen missed calls on the server after mark all seen: %v", unseen)
	}
}

func TestBrowserPanelDepartmentSwitchTurnsReceptionOffForThatUserOnly(t *testing.T) {
	t.Parallel()
	n, _ := startPanelNode(t)
	tab := startChromium(t)
	p := openPanelPage(t, tab, n, "andy", false)
	p.openPanelAndWait()
	p.waitPanel("department sales, reception on", func(v panelView) bool { return v.Groups["sales"].settled("true") })

	groupStatus := func(user string) string {
		t.Helper()
		st, body := n.api(user, http.MethodGet, "/api/groups", "")
		gs, _ := body["groups"].([]any)
		if st != http.StatusOK || len(gs) != 1 {
			t.Fatalf("GET /api/groups as %s: %d %v", user, st, body)
		}
		g, _ := gs[0].(map[string]any)
		if g["id"] != "sales" {
			t.Fatalf("%s's groups: %v", user, body)
		}
		return fmt.Sprint(g["status"])
	}

	sales := inWidget("[data-group=sales]")
	p.mouseClick("the sales switch", sales)
	p.waitPanel("sales reception off, confirmed", func(v panelView) bool { return v.Groups["sales"].settled("false") })
	if a, m := groupStatus("andy"), groupStatus("mike"); a != "off" || m != "on" {
		t.Fatalf("after switching sales off: andy %s, mike %s; want off, on", a, m)
	}

	p.mouseClick("the sales switch", sales)
	v := p.waitPanel("sales reception on again, confirmed", func(v panelView) bool { return v.Groups["sales"].settled("true") })
	if a := groupStatus("andy"); a != "on" {
		t.Fatalf("after switching sales on again: andy %s", a)
	}
	if v.Msg != "" || v.Off != "" || !v.DND.settled("false") {
		t.Errorf("the panel after the department switches: %v", v)
	}
}

func TestBrowserPanelTelLinkOnTheHostPagePlacesACallThroughTheAPI(t *testing.T) {
	t.Parallel()
	n, pbx := startPanelNode(t)
	tab := startChromium(t)
	p := openPanelPage(t, tab, n, "andy", true)
	before, err := eval[string](p, `location.href`)
	if err != nil {
		t.Fatal(err)
	}

	p.mouseClick("the tel: link", `document.querySelector('a[href^="tel:"]')`)
	// The note says so at once (for 4 s); the call's frames follow.
	p.waitPanel("a 'Calling' note", func(v panelView) bool { return strings.Contains(v.Note, "Calling "+knownPhoneText) })
	f := p.waitOnEventFrame("OUTGOING frame of the call placed", outgoingFrameOf(""))
	out, _ := f["callid"].(string)
	if f["user"] != "andy" || f["direction"] != "out" || f["phone"] != "+"+knownPhone {
		t.Errorf("OUTGOING frame %v, want andy's outgoing call to +%s", f, knownPhone)
	}
	p.waitOnEventFrame("the call's record", func(f map[string]any) bool { return f["type"] == "history" && f["callid"] == out })
	if after, err := eval[string](p, `location.href`); err != nil || after != before {
		t.Errorf("the page navigated on the tel: link: %q → %q (%v)", before, after, err)
	}
	if fs := p.onEventFrames(); slices.ContainsFunc(fs, outgoingFrameOf(out)) {
		t.Errorf("one click placed more than one call: %v", fs)
	}
	checkPlayedFor(t, pbx, out, "andy", "+"+knownPhone)
	if ids, _ := recentCallIDs(n, "andy"); !slices.Equal(ids, []string{out}) {
		t.Errorf("andy's recent calls %v, want [%s]", ids, out)
	}
}
