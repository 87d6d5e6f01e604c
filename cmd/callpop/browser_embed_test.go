package main

// Browser tests of the widget as a guest in a real CRM page: a strict
// Content-Security-Policy, the host's own keyboard handling, the card's
// actions, the status dot's reasons and the renderExtra extension point.
// The page is embedPage, served by startPageNode's node at /embed-page.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// embedPage is a CRM page that sends a Content-Security-Policy header
// (serveEmbedPage) and records what the widget does: every onEvent frame
// (__frames), every frame the widget sends (__sent), console.error lines
// (__errors), and the Escapes its own modal's handler saw (__hostEsc).
var embedPage = template.Must(template.New("embed-page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme CRM — deal</title>
<style>#probe{color:rgb(1, 2, 3)}</style>
</head><body>
<p id="probe">A page rule the CSP must block, unless the page allows inline styles.</p>
{{if .Modal}}<div id="modal" role="dialog" aria-label="Edit deal"><p>Edit deal</p><button id="modal-ok">OK</button></div>{{end}}
<script nonce="{{.Nonce}}">
window.__frames = []; window.__sent = []; window.__errors = []; window.__hostEsc = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (d) { window.__sent.push(String(d)); return send.call(this, d); };
const err = console.error;
console.error = function (...a) { window.__errors.push(a.map(String).join(' ')); return err.apply(console, a); };
{{if .Fallback}}// A browser without constructable stylesheets (older Safari and Firefox).
delete ShadowRoot.prototype.adoptedStyleSheets;{{end}}
// The CRM's modal closes on Escape, from a handler on the document.
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  window.__hostEsc.push({prevented: e.defaultPrevented});
  document.getElementById('modal')?.remove();
});
</script>
<script src="/widget.js"></script>
<script nonce="{{.Nonce}}">
CallPop.init({url: location.origin, token: {{.Token}}, lang: "en", crmLink: {{.CRMLink}},
  onEvent: (f) => window.__frames.push(f){{if .StyleNonce}}, nonce: {{.Nonce}}{{end}}{{if .Extra}},
  renderExtra: (call) => {
    if (call.callid === 'boom') throw new Error('no deal for ' + call.callid);
    call.phone = 'changed by the host'; // a copy: the card keeps its own
    const d = document.createElement('div');
    d.className = 'deal';
    d.textContent = 'Deal: Annual support (' + call.event + ')';
    return d;
  }{{end}}});
{{if .Modal}}document.getElementById('modal-ok').focus();{{end}}
</script>
</body></html>
`))

// serveEmbedPage serves /embed-page?user=andy with
//
//	csp=self|nonce|none  style-src 'self' | 'nonce-<n>' (and init's nonce) | 'none'; no csp: no header
//	fallback=1           no constructable stylesheets
//	modal=1              a modal with its own Escape handler, focused
//	extra=1              a renderExtra that adds a deal line (and throws for call "boom")
//	token=bad            a token the server refuses, and no getToken
func serveEmbedPage(s *server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		tok, err := s.jwt.Mint(q.Get("user"), time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if q.Get("token") == "bad" {
			tok = "not-a-token"
		}
		nonce := rand.Text()
		// What the README's "Content-Security-Policy" section tells a CRM
		// to allow, and no more.
		csp := "default-src 'none'; script-src 'self' 'nonce-" + nonce + "'; connect-src 'self'; media-src 'self'; style-src "
		switch q.Get("csp") {
		case "self":
			csp += "'self'"
		case "nonce":
			csp += "'nonce-" + nonce + "'"
		case "none":
			csp += "'none'"
		default:
			csp = ""
		}
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = embedPage.Execute(w, map[string]any{
			"Token": tok, "Nonce": nonce, "CRMLink": crmLinkTmpl,
			"StyleNonce": q.Get("csp") == "nonce", "Fallback": q.Get("fallback") != "",
			"Modal": q.Get("modal") != "", "Extra": q.Get("extra") != "",
		})
	}
}

// openEmbedPage navigates tab to n's embed page for andy with query and,
// unless the page is expected to stay offline, waits until the widget is live.
func openEmbedPage(t *testing.T, tab context.Context, n *node, query string, live bool) *page {
	t.Helper()
	p := &page{t: t, ctx: tab, name: "andy (" + query + ")"}
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(n.base+"/embed-page?user=andy&"+query)); err != nil {
		t.Fatalf("open embed page %s: %v", query, err)
	}
	if live {
		p.waitFor("widget live", browserWait, func(v widgetView) bool { return v.Status == "live" })
	}
	return p
}

// pressKey sends a key to the page as a keyboard does (to the focused element).
func (p *page) pressKey(key string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.KeyEvent(key)); err != nil {
		p.t.Fatalf("%s: press key: %v", p.name, err)
	}
}

// styleView is how the widget is styled, read from computed styles.
type styleView struct {
	HostStyleAttr bool    `json:"hostStyleAttr"` // <callpop-widget style=…>: blocked by a strict CSP
	ProbeColor    string  `json:"probeColor"`    // the page's own inline <style>, to see the CSP is on
	WrapPosition  string  `json:"wrapPosition"`
	CardBG        string  `json:"cardBG"`
	CardRadius    string  `json:"cardRadius"`
	CardRight     float64 `json:"cardRight"` // the card's right edge, in a 900 px wide viewport
	PanelOpen     bool    `json:"panelOpen"`
	PanelWidth    float64 `json:"panelWidth"`
	PanelBG       string  `json:"panelBG"`
}

const readStyleJS = `((callid) => {
  const host = document.querySelector('callpop-widget'), r = host.shadowRoot;
  const cs = (el) => el ? getComputedStyle(el) : {};
  const card = r.querySelector('[data-callid="' + callid + '"]'), panel = r.querySelector('.panel');
  return {
    hostStyleAttr: host.hasAttribute('style'),
    probeColor: getComputedStyle(document.getElementById('probe')).color,
    wrapPosition: cs(r.querySelector('.w')).position || '',
    cardBG: cs(card).backgroundColor || '', cardRadius: cs(card).borderTopRightRadius || '',
    cardRight: card ? card.getBoundingClientRect().right : 0,
    panelOpen: !!panel && !panel.hidden,
    panelWidth: panel ? panel.getBoundingClientRect().width : 0, panelBG: cs(panel).backgroundColor || '',
  };
})(%s)`

func (p *page) styles(callid string) styleView {
	p.t.Helper()
	v, err := eval[styleView](p, fmt.Sprintf(readStyleJS, mustJSON(callid)))
	if err != nil {
		p.t.Fatalf("%s: read styles: %v", p.name, err)
	}
	return v
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// acks returns the ack frames the widget sent so far.
func (p *page) acks() []map[string]any {
	p.t.Helper()
	sent, err := eval[[]string](p, `window.__sent`)
	if err != nil {
		p.t.Fatalf("%s: read sent frames: %v", p.name, err)
	}
	var acks []map[string]any
	for _, s := range sent {
		var f map[string]any
		if json.Unmarshal([]byte(s), &f) == nil && f["type"] == "ack" {
			acks = append(acks, f)
		}
	}
	return acks
}

// waitAck waits for the widget's ack of a frame and returns it.
func (p *page) waitAck() map[string]any {
	p.t.Helper()
	for deadline := time.Now().Add(browserWait); ; time.Sleep(50 * time.Millisecond) {
		if a := p.acks(); len(a) > 0 {
			return a[len(a)-1]
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no ack within %v; the widget shows %v", p.name, browserWait, p.view())
		}
	}
}

// TestBrowserStrictCSPShowsStyledCardsAndPanel: under a style-src without
// 'unsafe-inline' — 'self', a nonce, and in a browser without constructable
// stylesheets too — the cards and the panel are styled (computed styles,
// not just presence), and acks say so; where the CSP keeps every style out,
// the widget says so on its dot, to onEvent and in its acks.
func TestBrowserStrictCSPShowsStyledCardsAndPanel(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	for i, query := range []string{
		"csp=self",             // constructable stylesheet: style-src does not govern it
		"csp=nonce",            // the same, on a nonce-based page
		"csp=self&fallback=1",  // <link> to /widget.css on callpop's own origin
		"csp=nonce&fallback=1", // <style nonce>
		"csp=none",             // constructable stylesheets even under style-src 'none'
	} {
		p := openEmbedPage(t, tab, n, query, true)
		callid := "s" + string(rune('0'+i))
		n.event("INCOMING", "andy", callid)
		p.waitCard(callid, "INCOMING", "ring")
		if a := p.waitAck(); a["unstyled"] != nil {
			t.Errorf("%s: ack %v of a styled card", query, a)
		}
		p.mouseClick("the panel button", inWidget("button.open"))
		p.waitFor("panel open", browserWait, func(widgetView) bool { return p.styles(callid).PanelOpen })

		s := p.styles(callid)
		if s.ProbeColor == "rgb(1, 2, 3)" {
			t.Fatalf("%s: the page's inline <style> applied: the CSP is not in force", query)
		}
		if s.HostStyleAttr || s.WrapPosition != "fixed" || s.CardBG != "rgb(255, 255, 255)" || s.CardRadius != "10px" {
			t.Errorf("%s: card not styled: %+v", query, s)
		}
		if s.CardRight < 860 || s.CardRight > 900 {
			t.Errorf("%s: card's right edge at %v px, want it fixed at the viewport's right (900 - 16)", query, s.CardRight)
		}
		if s.PanelWidth < 300 || s.PanelWidth > 340 || s.PanelBG != "rgb(255, 255, 255)" {
			t.Errorf("%s: panel not styled (a full-width block is 900 px): %+v", query, s)
		}
		if v := p.view(); strings.Contains(v.Title, "Content-Security-Policy") {
			t.Errorf("%s: styled, yet the dot says %q", query, v.Title)
		}
	}

	// Neither constructable stylesheets nor /widget.css allowed: the cards
	// show unstyled, and the widget says so.
	p := openEmbedPage(t, tab, n, "csp=none&fallback=1", true)
	v := p.waitFor("the dot's CSP warning", browserWait, func(v widgetView) bool {
		return strings.Contains(v.Title, "Content-Security-Policy blocked the widget's styles")
	})
	if v.Status != "live" || !strings.HasPrefix(v.Title, "Connected") {
		t.Errorf("unstyled: the dot shows %q %q, want live, with the warning added", v.Status, v.Title)
	}
	n.event("INCOMING", "andy", "u1")
	p.waitCard("u1", "INCOMING", "ring")
	if a := p.waitAck(); a["unstyled"] != true || a["id"] == "" {
		t.Errorf("ack of an unstyled card: %v, want unstyled:true", a)
	}
	warned := 0
	for _, f := range p.onEventFrames() {
		if f["type"] == "warning" && f["code"] == "unstyled" {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("onEvent got %d unstyled warnings, want 1: %v", warned, p.onEventFrames())
	}
}

// TestBrowserEscapeForTheHostsModalLeavesTheRingingCard: Escape pressed in
// the page closes the CRM's modal and leaves the card; pressed with focus
// in the card it dismisses the card (and the page's handler still hears it).
func TestBrowserEscapeForTheHostsModalLeavesTheRingingCard(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	p := openEmbedPage(t, tab, n, "modal=1", true)
	n.event("INCOMING", "andy", "c1")
	p.waitCard("c1", "INCOMING", "ring")
	if id, err := eval[string](p, `document.activeElement.id`); err != nil || id != "modal-ok" {
		t.Fatalf("focus is on %q (%v), want the modal's button", id, err)
	}

	p.pressKey(kb.Escape)
	type hostEsc struct {
		Prevented bool `json:"prevented"`
	}
	modal := func() (bool, []hostEsc) {
		open, err := eval[bool](p, `!!document.getElementById('modal')`)
		esc, err2 := eval[[]hostEsc](p, `window.__hostEsc`)
		if err != nil || err2 != nil {
			t.Fatalf("read the page: %v %v", err, err2)
		}
		return open, esc
	}
	if open, esc := modal(); open || len(esc) != 1 || esc[0].Prevented {
		t.Fatalf("after Escape in the page: modal open %v, its handler saw %+v; want it closed by the page's own handler", open, esc)
	}
	// The key's dispatch is over when KeyEvent returns, and the widget
	// dismisses in its handler: a wrong dismissal shows at once.
	if c := p.view().card("c1"); c == nil || !c.Visible {
		t.Fatalf("Escape meant for the page dismissed the ringing card: %v", p.view())
	}

	// The panel: Escape inside it closes it, and the card stays.
	p.mouseClick("the panel button", inWidget("button.open"))
	p.waitPanel("panel open", func(v panelView) bool { return v.Open })
	p.pressKey(kb.Escape)
	p.waitPanel("panel closed by Escape", func(v panelView) bool { return !v.Open && v.Expanded == "false" })
	if c := p.view().card("c1"); c == nil {
		t.Fatalf("Escape in the panel dismissed the card: %v", p.view())
	}

	// Focus in the card: Escape is the widget's.
	if _, err := eval[chromedp.Void](p, inWidget(`[data-callid="c1"] button.close`)+`.focus()`); err != nil {
		t.Fatal(err)
	}
	p.pressKey(kb.Escape)
	p.waitNoCard("c1")
	if _, esc := modal(); len(esc) != 3 || !esc[2].Prevented {
		t.Errorf("the page's handler saw %+v; want every Escape, the widget's marked handled (defaultPrevented)", esc)
	}
	// Dismissed for the rest of the call: it does not come back on an update.
	n.event("ACCEPTED", "andy", "c1")
	n.event("INCOMING", "andy", "c2")
	p.waitCard("c2", "INCOMING", "ring")
	if c := p.view().card("c1"); c != nil {
		t.Errorf("the dismissed card came back: %+v", c)
	}
}

// TestBrowserCallBackOnlyOnMissedCards: a ringing, running or outgoing call
// is not called back; a missed one is.
func TestBrowserCallBackOnlyOnMissedCards(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	p := openEmbedPage(t, tab, n, "", true)
	hasCallBack := func(callid string) bool {
		t.Helper()
		b, err := eval[bool](p, `!!`+inWidget(`[data-callid="`+callid+`"] button.callback`))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	n.event("INCOMING", "andy", "c1", "direction", "in")
	p.waitCard("c1", "INCOMING", "ring")
	if hasCallBack("c1") {
		t.Error("a ringing card offers Call back")
	}
	n.event("ACCEPTED", "andy", "c1")
	p.waitCard("c1", "ACCEPTED", "talk")
	if hasCallBack("c1") {
		t.Error("an in-call card offers Call back")
	}
	n.event("OUTGOING", "andy", "c2", "direction", "out")
	p.waitCard("c2", "OUTGOING", "out")
	if hasCallBack("c2") {
		t.Error("an outgoing card offers Call back")
	}
	n.event("INCOMING", "andy", "c3", "direction", "in")
	p.waitCard("c3", "INCOMING", "ring")
	n.event("CANCELLED", "andy", "c3")
	c := p.waitCard("c3", "CANCELLED", "missed")
	if !hasCallBack("c3") || !strings.Contains(c.Text, "Call back") {
		t.Errorf("a missed card lacks Call back: %+v", c)
	}
}

// TestBrowserRefusedTokenSaysSoOnTheDot: a token the server refuses, and no
// getToken to replace it: the widget stops, and its dot says why.
func TestBrowserRefusedTokenSaysSoOnTheDot(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	p := openEmbedPage(t, tab, n, "token=bad", false)
	v := p.waitFor("offline", browserWait, func(v widgetView) bool { return v.Status == "offline" })
	if v.Title != "Offline: token refused" {
		t.Errorf("the dot says %q, want %q", v.Title, "Offline: token refused")
	}
}

// TestBrowserRenderExtraAddsTheHostsLinesToTheCard: the host's renderExtra
// runs for every card build with a copy of the call frame; its node shows in
// the card's .extra slot; when it throws, the card shows without it and the
// error is logged.
func TestBrowserRenderExtraAddsTheHostsLinesToTheCard(t *testing.T) {
	t.Parallel()
	n := startPageNode(t, browserConfig(t), "127.0.0.1:0")
	tab := startChromium(t)
	p := openEmbedPage(t, tab, n, "extra=1&csp=self", true)
	extra := func(callid string) string {
		t.Helper()
		s, err := eval[string](p, `(`+inWidget(`[data-callid="`+callid+`"] .extra .deal`)+`)?.textContent || ''`)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	n.event("INCOMING", "andy", "c1")
	c := p.waitCard("c1", "INCOMING", "ring")
	if got := extra("c1"); got != "Deal: Annual support (INCOMING)" {
		t.Errorf("c1's extra line %q", got)
	}
	if !strings.Contains(c.Text, knownPhoneText) {
		t.Errorf("the host's change to its copy of the frame reached the card: %q", c.Text)
	}
	n.event("ACCEPTED", "andy", "c1")
	p.waitCard("c1", "ACCEPTED", "talk")
	if got := extra("c1"); got != "Deal: Annual support (ACCEPTED)" {
		t.Errorf("c1's extra line after ACCEPTED %q", got)
	}

	n.event("INCOMING", "andy", "boom")
	c = p.waitCard("boom", "INCOMING", "ring")
	if !c.Visible || !strings.Contains(c.Text, knownPhoneText) || extra("boom") != "" {
		t.Errorf("the card whose renderExtra threw: %+v", c)
	}
	errs, err := eval[[]string](p, `window.__errors`)
	if err != nil || len(errs) != 1 || !strings.Contains(errs[0], "CallPop renderExtra: Error: no deal for boom") {
		t.Errorf("console.error lines %q (%v), want the renderExtra error once", errs, err)
	}
}
