// Package widget serves the embeddable call-popup widget (widget.js), its
// panel (panel.js, served as /widget-panel.js), their styles (widget.css) and
// the demo CRM page (demo.html), all embedded in the binary, so `go build`
// needs no Node and a deploy is one file.
//
// widget.css is the one source of the widget's styles. It is served as
// /widget.css and also put into the served widget.js (in place of the string
// "__CALLPOP_CSS__"), which adopts it as a constructable stylesheet: that
// needs no request and is allowed under a strict Content-Security-Policy
// (style-src without 'unsafe-inline'). Browsers without constructable
// stylesheets link /widget.css from the widget's shadow root instead.
//
// widget.js is the popup core and has a size budget (12 KiB gzipped, checked
// by the tests); the panel — DND and department switches, recent calls — is
// imported by widget.js, with import(), the first time it is opened. A module
// script from another origin is fetched with CORS: the CRM page's origin must
// be allowed (CALLPOP_ALLOWED_ORIGINS) for the panel to load, as it must be
// for the socket and the page API.
//
// All are served cache-safely: a strong ETag derived from the content,
// Cache-Control: no-cache (browsers revalidate every load and get a 304 until
// a deploy changes the file), and a gzip copy compressed once at start-up.
package widget

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed widget.js
var script []byte

//go:embed panel.js
var panel []byte

//go:embed demo.html
var demoPage []byte

//go:embed widget.css
var style []byte

// cssMark is the JavaScript string in widget.js that the served copy has
// widget.css in place of.
const cssMark = `"__CALLPOP_CSS__"`

// Script returns the widget's source as served (for tests and tooling).
func Script() []byte { return bytes.Clone(scriptAsset.body) }

// Panel returns the panel's source as served (for tests and tooling).
func Panel() []byte { return bytes.Clone(panelAsset.body) }

// Style returns widget.css as served (for tests and tooling).
func Style() []byte { return bytes.Clone(styleAsset.body) }

// withCSS returns the script js with the stylesheet css, as a JSON (and so
// JavaScript) string, in place of cssMark.
func withCSS(js, css []byte) []byte {
	q, err := json.Marshal(string(css))
	if err != nil || bytes.Count(js, []byte(cssMark)) != 1 {
		panic("widget: widget.js must hold " + cssMark + " exactly once") // the embedded files are broken
	}
	return bytes.Replace(js, []byte(cssMark), q, 1)
}

// stripComments drops whole-line comments, blank lines and indentation from
// the embedded JavaScript before it is served: the source keeps its
// explanations, browsers get fewer bytes. It is deliberately no minifier: it
// only removes lines that are nothing but a comment, so code is served as
// written (and the browser tests run exactly what is served).
func stripComments(src []byte) []byte {
	var out bytes.Buffer
	inBlock := false
	for _, line := range bytes.Split(src, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if inBlock {
			if i := bytes.Index(t, []byte("*/")); i >= 0 {
				inBlock = false
				t = bytes.TrimSpace(t[i+2:])
			} else {
				continue
			}
		} else if bytes.HasPrefix(t, []byte("/*")) {
			if i := bytes.Index(t[2:], []byte("*/")); i >= 0 {
				t = bytes.TrimSpace(t[i+4:])
			} else {
				inBlock = true
				continue
			}
		}
		if len(t) == 0 || bytes.HasPrefix(t, []byte("//")) {
			continue
		}
		out.Write(t)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

var (
	styleAsset  = newAsset(stripComments(style), "text/css; charset=utf-8")
	scriptAsset = newAsset(withCSS(stripComments(script), styleAsset.body), "text/javascript; charset=utf-8")
	panelAsset  = newAsset(stripComments(panel), "text/javascript; charset=utf-8")
	demoAsset   = newAsset(demoPage, "text/html; charset=utf-8")
)

// Handler serves widget.js on GET and HEAD. allowed reports whether a
// cross-origin page may read the script (Access-Control-Allow-Origin echoes
// its Origin); nil allows none. Pages embedding it with a plain <script src>
// need no CORS; only fetch() or <script crossorigin> do.
func Handler(allowed func(origin string) bool) http.Handler {
	return corsAsset(scriptAsset, allowed)
}

// PanelHandler serves the widget's panel (GET /widget-panel.js) on GET and
// HEAD, as Handler serves widget.js. widget.js imports it as a module, and a
// cross-origin module is fetched with CORS, so on a CRM page served from
// another origin the panel loads only when allowed(origin) holds: route it
// with the same allowed as Handler (CALLPOP_ALLOWED_ORIGINS).
func PanelHandler(allowed func(origin string) bool) http.Handler {
	return corsAsset(panelAsset, allowed)
}

// StyleHandler serves widget.css (GET /widget.css) on GET and HEAD, as
// Handler serves widget.js: the stylesheet widget.js links from its shadow
// root in browsers without constructable stylesheets. A <link> needs no CORS;
// allowed lets the origins it admits read it with fetch() or crossorigin.
func StyleHandler(allowed func(origin string) bool) http.Handler {
	return corsAsset(styleAsset, allowed)
}

// corsAsset serves a, letting the origins allowed admits read it.
func corsAsset(a *asset, allowed func(origin string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowed != nil {
			// The answer depends on Origin, so a shared cache must key on
			// it, even for an origin that got no CORS header: its copy must
			// not be served to an allowed one.
			w.Header().Add("Vary", "Origin")
			if o := r.Header.Get("Origin"); o != "" && allowed(o) {
				w.Header().Set("Access-Control-Allow-Origin", o)
			}
		}
		a.serve(w, r)
	})
}

// DemoHandler serves the demo CRM page (GET /demo in demo mode). The page
// fetches its tokens from GET /demo/token?user=<name>, which the demo server
// provides.
func DemoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		demoAsset.serve(w, r)
	})
}

// asset is one embedded file, ready to serve as is or gzipped.
type asset struct {
	ctype       string
	body, gz    []byte
	etag, gzTag string // strong validators, one per representation
}

func newAsset(body []byte, ctype string) *asset {
	sum := sha256.Sum256(body)
	tag := base64.RawURLEncoding.EncodeToString(sum[:12])
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		panic("widget: " + err.Error()) // only for a bad level
	}
	zw.Write(body) // writes to a bytes.Buffer do not fail
	zw.Close()
	return &asset{
		ctype: ctype, body: body, gz: buf.Bytes(),
		etag: `"` + tag + `"`, gzTag: `"` + tag + `-gz"`,
	}
}

// serve answers a GET or HEAD for a with http.ServeContent, which handles
// If-None-Match (304), ranges and HEAD; the router answers other methods.
// The gzipped representation has its own ETag.
func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	body, tag := a.body, a.etag
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, tag = a.gz, a.gzTag
		h.Set("Content-Encoding", "gzip")
		// ServeContent leaves Content-Length to the caller for an encoded
		// body, and a range of a gzip stream of a few KiB helps no one: the
		// whole body, its length known.
		if r.Header.Get("Range") != "" {
			r = r.Clone(r.Context())
			r.Header.Del("Range")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	h.Set("ETag", tag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip:
// "gzip" or "*" listed with a q-value above zero.
func acceptsGzip(header string) bool {
	gz, star := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "gzip", "x-gzip":
			gz = q
		case "*":
			star = q
		}
	}
	if gz >= 0 {
		return gz > 0
	}
	return star > 0
}
