package widget

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/callpop/callpop/event"
)

// maxGzip is the widget's size budget over the wire.
const maxGzip = 12 * 1024

func get(t *testing.T, h http.Handler, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/widget.js", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScriptIsServedAsJavaScriptWithRevalidation(t *testing.T) {
	t.Parallel()
	res := get(t, Handler(nil))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control %q", got)
	}
	if got := res.Header.Get("Content-Encoding"); got != "" {
		t.Errorf("Content-Encoding %q without Accept-Encoding", got)
	}
	if !bytes.Equal(body(t, res), servedScript()) {
		t.Error("body is not widget.js")
	}
	if !bytes.Contains(script, []byte("CallPop = {")) {
		t.Error("widget.js does not define CallPop")
	}
}

// servedScript is widget.js as it should be served: comments out, widget.css in.
func servedScript() []byte { return withCSS(stripComments(script), stripComments(style)) }

func TestETagIsStrongAndAnswers304(t *testing.T) {
	t.Parallel()
	h := Handler(nil)
	tag := get(t, h).Header.Get("ETag")
	if !strings.HasPrefix(tag, `"`) || len(tag) < 10 {
		t.Fatalf("ETag %q is not a strong validator", tag)
	}
	if again := get(t, h).Header.Get("ETag"); again != tag {
		t.Errorf("ETag changed between requests: %q, %q", tag, again)
	}
	for _, inm := range []string{tag, `"other", ` + tag, "W/" + tag, "*"} {
		res := get(t, h, "If-None-Match", inm)
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match %s: status %d, want 304", inm, res.StatusCode)
		}
		if len(body(t, res)) != 0 {
			t.Errorf("If-None-Match %s: 304 with a body", inm)
		}
		if res.Header.Get("ETag") != tag || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("304 lacks ETag or Cache-Control: %v", res.Header)
		}
	}
	if res := get(t, h, "If-None-Match", `"stale"`); res.StatusCode != http.StatusOK {
		t.Errorf("stale ETag: status %d, want 200", res.StatusCode)
	}
	// The gzip representation has its own validator.
	gz := get(t, h, "Accept-Encoding", "gzip").Header.Get("ETag")
	if gz == tag {
		t.Error("gzip and identity share a strong ETag")
	}
	if res := get(t, h, "Accept-Encoding", "gzip", "If-None-Match", gz); res.StatusCode != http.StatusNotModified {
		t.Errorf("gzip revalidation: status %d", res.StatusCode)
	}
}

func TestGzipIsServedWhenAcceptedAndUnderBudget(t *testing.T) {
	t.Parallel()
	res := get(t, Handler(nil), "Accept-Encoding", "br, gzip, deflate")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Accept-Encoding") {
		t.Errorf("Vary %q lacks Accept-Encoding", res.Header.Values("Vary"))
	}
	b := body(t, res)
	if len(b) >= maxGzip {
		t.Errorf("widget.js is %d bytes gzipped, budget %d", len(b), maxGzip)
	}
	t.Logf("widget.js: %d bytes, %d gzipped", len(script), len(b))
	if res.Header.Get("Content-Length") != "" && res.ContentLength != int64(len(b)) {
		t.Errorf("Content-Length %d, body %d", res.ContentLength, len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, servedScript()) {
		t.Error("gunzipped body is not widget.js")
	}
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]bool{
		"":                 false,
		"gzip":             true,
		"GZIP":             true,
		"deflate, br":      false,
		"gzip;q=0":         false,
		"gzip; q=0.5, br":  true,
		"*":                true,
		"*;q=0":            false,
		"gzip;q=0, *":      false,
		"identity, *;q=.1": true,
		"x-gzip":           true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestCORSOnlyForAllowedOrigins(t *testing.T) {
	t.Parallel()
	h := Handler(func(o string) bool { return o == "https://crm.example.com" })

	res := get(t, h, "Origin", "https://crm.example.com")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://crm.example.com" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q", got)
	}
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("allowed origin: Vary %q lacks Origin", res.Header.Values("Vary"))
	}

	res = get(t, h, "Origin", "https://evil.example.com")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin %q", got)
	}
	if res.StatusCode != http.StatusOK {
		t.Errorf("other origin: status %d (the script itself is public)", res.StatusCode)
	}

	if got := get(t, h).Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no origin: Access-Control-Allow-Origin %q", got)
	}
	if got := get(t, Handler(nil), "Origin", "https://crm.example.com").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("nil allowed: Access-Control-Allow-Origin %q", got)
	}
}

// Other methods are the router's to refuse (cmd/callpop's edge test).
func TestHeadHasNoBody(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/widget.js", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("ETag") == "" {
		t.Errorf("HEAD: status %d, %d body bytes, ETag %q", rec.Code, rec.Body.Len(), rec.Header().Get("ETag"))
	}
}

func TestDemoPageEmbedsTheWidgetLikeACRM(t *testing.T) {
	t.Parallel()
	res := get(t, DemoHandler(), "Accept-Encoding", "gzip")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<title>Demo CRM</title>`,
		`<script src="/widget.js"></script>`,
		`CallPop.init(`,
		`CallPop.destroy()`,
		`/demo/token?user=`,
		`/demo?phone={phone}`,
		`value="andy"`, `value="mike"`, `value="daria"`,
		`fetch('/demo/contacts')`, `href = 'tel:+'`,
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("demo page lacks %s", want)
		}
	}
}

func TestScriptReturnsACopy(t *testing.T) {
	t.Parallel()
	s := Script()
	s[0] ^= 0xff
	if bytes.Equal(s, Script()) {
		t.Error("Script shares the embedded bytes")
	}
}

// TestCloseCodesMatchTheServer keeps widget.js's close-code table in step
// with event/closecode.go: every code the server sends has a text.
func TestCloseCodesMatchTheServer(t *testing.T) {
	t.Parallel()
	for _, code := range []int{
		event.CloseRestart, event.CloseSlow, event.CloseTokenExpired, event.CloseUnavailable,
		event.CloseTooMany, event.CloseUnauthorized, event.CloseProtocol, event.CloseTenantDisabled,
	} {
		if n := strings.Count(string(script), strconv.Itoa(code)+": '"); n != 2 {
			t.Errorf("close code %d has %d texts in widget.js, want 2 (ru, en)", code, n)
		}
	}
	// The widget stops at 4500 and up, as event.Reconnect says.
	if event.Reconnect(4499) != true || event.Reconnect(4500) != false {
		t.Error("event.Reconnect moved its boundary; update closeAction in widget.js")
	}
	if !strings.Contains(string(script), "if (code >= 4500) return { stop: true") {
		t.Error("widget.js closeAction no longer stops at 4500")
	}
}

// maxPanelGzip keeps the lazily loaded panel honest too.
const maxPanelGzip = 16 * 1024

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func TestPanelIsServedLikeTheScript(t *testing.T) {
	t.Parallel()
	h := PanelHandler(nil)
	res := get(t, h)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/javascript; charset=utf-8",
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
		"Content-Encoding":       "",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	if !bytes.Equal(body(t, res), stripComments(panel)) || !bytes.Equal(Panel(), stripComments(panel)) {
		t.Error("body is not panel.js")
	}

	// Revalidation: a strong ETag of its own, 304 on a match.
	tag := res.Header.Get("ETag")
	if !strings.HasPrefix(tag, `"`) || len(tag) < 10 {
		t.Fatalf("ETag %q is not a strong validator", tag)
	}
	if tag == get(t, Handler(nil)).Header.Get("ETag") {
		t.Error("panel.js and widget.js share an ETag")
	}
	for _, inm := range []string{tag, "W/" + tag, `"x", ` + tag} {
		res := get(t, h, "If-None-Match", inm)
		if res.StatusCode != http.StatusNotModified || len(body(t, res)) != 0 || res.Header.Get("ETag") != tag {
			t.Errorf("If-None-Match %s: status %d, ETag %q", inm, res.StatusCode, res.Header.Get("ETag"))
		}
	}
	if res := get(t, h, "If-None-Match", `"stale"`); res.StatusCode != http.StatusOK {
		t.Errorf("stale ETag: status %d", res.StatusCode)
	}

	// gzip: its own validator, the same bytes once unpacked, within budget.
	res = get(t, h, "Accept-Encoding", "gzip, br")
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Accept-Encoding") {
		t.Fatalf("Content-Encoding %q, Vary %q", res.Header.Get("Content-Encoding"), res.Header.Values("Vary"))
	}
	gzTag := res.Header.Get("ETag")
	if gzTag == tag {
		t.Error("gzip and identity share a strong ETag")
	}
	b := body(t, res)
	if res.ContentLength != int64(len(b)) {
		t.Errorf("Content-Length %d, body %d", res.ContentLength, len(b))
	}
	if !bytes.Equal(gunzip(t, b), stripComments(panel)) {
		t.Error("gunzipped body is not panel.js")
	}
	if len(b) >= maxPanelGzip {
		t.Errorf("panel.js is %d bytes gzipped, budget %d", len(b), maxPanelGzip)
	}
	t.Logf("panel.js: %d bytes, %d gzipped", len(panel), len(b))
	if res := get(t, h, "Accept-Encoding", "gzip", "If-None-Match", gzTag); res.StatusCode != http.StatusNotModified {
		t.Errorf("gzip revalidation: status %d", res.StatusCode)
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/widget-panel.js", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("ETag") != tag {
		t.Errorf("HEAD: status %d, %d body bytes, ETag %q", rec.Code, rec.Body.Len(), rec.Header().Get("ETag"))
	}
}

// A CRM page on another origin imports the panel as a module, which the
// browser fetches with CORS (credentials mode same-origin: no cookies, so an
// echoed origin suffices).
func TestPanelCORSOnlyForAllowedOrigins(t *testing.T) {
	t.Parallel()
	h := PanelHandler(func(o string) bool { return o == "https://crm.example.com" })
	for origin, want := range map[string]string{
		"https://crm.example.com":  "https://crm.example.com",
		"https://evil.example.com": "",
		"":                         "",
	} {
		var res *http.Response
		if origin == "" {
			res = get(t, h, "Accept-Encoding", "gzip")
		} else {
			res = get(t, h, "Origin", origin, "Accept-Encoding", "gzip")
		}
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("Origin %q: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
		if res.StatusCode != http.StatusOK {
			t.Errorf("Origin %q: status %d (the panel itself is public)", origin, res.StatusCode)
		}
		if res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("Origin %q: credentials allowed; the panel needs none", origin)
		}
		vary := strings.Join(res.Header.Values("Vary"), ",")
		if !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Accept-Encoding") {
			t.Errorf("Origin %q: Vary %q", origin, vary)
		}
	}
	// A 304 to an allowed origin still carries the header.
	tag := get(t, h).Header.Get("ETag")
	if got := get(t, h, "Origin", "https://crm.example.com", "If-None-Match", tag).Header.Get("Access-Control-Allow-Origin"); got != "https://crm.example.com" {
		t.Errorf("304: Access-Control-Allow-Origin %q", got)
	}
	if got := get(t, PanelHandler(nil), "Origin", "https://crm.example.com").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("nil allowed: Access-Control-Allow-Origin %q", got)
	}
}

// TestWidgetLoadsThePanelItServes keeps the loader in widget.js, the route
// the server mounts and panel.js's registration in step.
func TestWidgetLoadsThePanelItServes(t *testing.T) {
	t.Parallel()
	if !bytes.Contains(script, []byte("import(base + '/widget-panel.js')")) {
		t.Error("widget.js no longer imports <base>/widget-panel.js; update the route and the docs")
	}
	if !bytes.Contains(panel, []byte("G.CallPop._panel = mount")) {
		t.Error("panel.js no longer registers CallPop._panel")
	}
	// No import/export statements: panel.js runs as a module (import()) and
	// under node --test's require alike.
	if m := regexp.MustCompile(`(?m)^\s*(import|export)\b[^(]`).Find(panel); m != nil {
		t.Errorf("panel.js has a module statement: %q", m)
	}
	// The DOM contract browser tests rely on is in place.
	for _, want := range []string{"'callback'", "'badge'", "'open'", "'aria-expanded'"} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("widget.js lacks %s", want)
		}
	}
	for _, want := range []string{"'panel'", "'data-dnd'", "'data-group'", "'data-record'", "'data-missed'",
		"dataset.seen", "role: 'switch'", "'aria-checked'", "'lnk allseen'", "'lnk seen'", "'recerr'", "preload: 'none'"} {
		if !bytes.Contains(panel, []byte(want)) {
			t.Errorf("panel.js lacks %s", want)
		}
	}
}

func TestStripCommentsKeepsCodeAndDropsOnlyCommentLines(t *testing.T) {
	t.Parallel()
	src := []byte("/*\n * header\n */\n  // a note\nconst u = 'https://x'; // trailing comment stays\n\n  /* one */ f();\ncss = `a{b:c}\n/* css */\n`;\n")
	want := "const u = 'https://x'; // trailing comment stays\nf();\ncss = `a{b:c}\n`;\n"
	if got := string(stripComments(src)); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// Served sources are still valid enough to hold every export marker.
	if !bytes.Contains(Script(), []byte("CallPop")) || len(Script()) >= len(script) {
		t.Fatal("served widget.js lost its code or was not stripped")
	}
}

// TestStyleIsServedAndBuiltIntoTheScript: /widget.css serves widget.css
// cache-safely, and the served widget.js holds the same CSS (one source),
// as a JavaScript string the browser decodes back to it.
func TestStyleIsServedAndBuiltIntoTheScript(t *testing.T) {
	t.Parallel()
	h := StyleHandler(func(o string) bool { return o == "https://crm.example.com" })
	res := get(t, h, "Origin", "https://crm.example.com")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":                "text/css; charset=utf-8",
		"Cache-Control":               "no-cache",
		"X-Content-Type-Options":      "nosniff",
		"Access-Control-Allow-Origin": "https://crm.example.com",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	css := body(t, res)
	if !bytes.Equal(css, stripComments(style)) || !bytes.Equal(Style(), css) {
		t.Error("body is not widget.css")
	}
	for _, want := range []string{":host{all:initial !important}", ".w{position:fixed;", ".card{", ".panel{width:340px;", ".extra{"} {
		if !bytes.Contains(css, []byte(want)) {
			t.Errorf("widget.css lacks %s", want)
		}
	}
	tag := res.Header.Get("ETag")
	if tag == "" || tag == get(t, Handler(nil)).Header.Get("ETag") {
		t.Errorf("ETag %q: missing or shared with widget.js", tag)
	}
	if res := get(t, h, "If-None-Match", tag); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d", res.StatusCode)
	}
	if res := get(t, h, "Accept-Encoding", "gzip"); !bytes.Equal(gunzip(t, body(t, res)), css) {
		t.Error("gzip body is not widget.css")
	}

	js := Script()
	if bytes.Contains(js, []byte(cssMark)) {
		t.Fatal("served widget.js still holds the CSS placeholder")
	}
	m := regexp.MustCompile(`const CSS = ("(?:[^"\\]|\\.)*");`).FindSubmatch(js)
	if m == nil {
		t.Fatal("served widget.js has no CSS string")
	}
	var got string
	if err := json.Unmarshal(m[1], &got); err != nil || got != string(css) {
		t.Errorf("widget.js's CSS is not widget.css: %v", err)
	}
	// No inline styles anywhere: a strict CSP blocks them. (The one <style>
	// widget.js makes carries the page's nonce.)
	for name, src := range map[string][]byte{"widget.js": stripComments(script), "panel.js": stripComments(panel)} {
		if m := regexp.MustCompile(`setAttribute\('style'|\.style\b|cssText|h\('style'`).Find(src); m != nil {
			t.Errorf("%s sets an inline style (%q): a strict CSP blocks it", name, m)
		}
	}
}
