package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/webhook"
)

// testToken is the crm_token every test server expects.
const testToken = "76fsd7tfs-crm-token"

// testContactsCSV is the directory behind every test server.
const testContactsCSV = `phone,name,responsible
79101234567,"Рога и Копыта, ООО",andy
+7 (495) 000-00-00,Globex,mike
`

const (
	knownName        = "Рога и Копыта, ООО"
	knownResponsible = "andy"
	knownAnswer      = `{"contact_name":"Рога и Копыта, ООО","responsible":"andy"}`
	formType         = "application/x-www-form-urlencoded"
)

func newTestDirectory(tb testing.TB) *contacts.Directory {
	tb.Helper()
	d, err := contacts.Load(strings.NewReader(testContactsCSV))
	if err != nil {
		tb.Fatalf("contacts.Load: %v", err)
	}
	return d
}

// serve starts the real Handler over HTTP; a zero cfg.CRMToken means testToken.
func serve(tb testing.TB, cfg webhook.Config, pub event.Publisher, dir event.Directory) *httptest.Server {
	tb.Helper()
	if cfg.CRMToken == "" {
		cfg.CRMToken = testToken
	}
	h, err := webhook.New(cfg, pub, dir, zaptest.NewLogger(tb), prometheus.NewRegistry())
	if err != nil {
		tb.Fatalf("webhook.New: %v", err)
	}
	return serveHandler(tb, h)
}

// serveHandler serves h until the test ends.
func serveHandler(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

// newTestServer serves a Handler over the embedded broker and the CSV
// directory, with the default budget and limits.
func newTestServer(tb testing.TB) (*httptest.Server, *memory.Broker) {
	tb.Helper()
	b := memory.New(memory.Config{})
	return serve(tb, webhook.Config{}, b, newTestDirectory(tb)), b
}

// request is one HTTP request to the webhook.
type request struct {
	method      string // "" = POST
	contentType string // "" = no Content-Type header
	body        string
	header      map[string]string
}

// response is what came back, body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func do(tb testing.TB, srv *httptest.Server, rq request) response {
	tb.Helper()
	method := rq.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+"/webhook", strings.NewReader(rq.body))
	if err != nil {
		tb.Fatal(err)
	}
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s /webhook: %v", method, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// post sends f as the PBX does: form-urlencoded.
func post(tb testing.TB, srv *httptest.Server, f fields) response {
	tb.Helper()
	return do(tb, srv, request{contentType: formType, body: f.form()})
}

// checkAnswer asserts the status, that the answer is a JSON object with a
// JSON Content-Type, and, when want is not "", that it equals want as JSON.
// It returns the decoded object.
func checkAnswer(tb testing.TB, r response, wantStatus int, want string) map[string]any {
	tb.Helper()
	if r.status != wantStatus {
		tb.Errorf("status %d, want %d; body %s", r.status, wantStatus, r.body)
	}
	ct := r.header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		tb.Errorf("Content-Type %q, want application/json", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		tb.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	if want != "" {
		var w map[string]any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			tb.Fatalf("bad want %q: %v", want, err)
		}
		if !reflect.DeepEqual(got, w) {
			tb.Errorf("body %s, want %s", r.body, want)
		}
	}
	if wantStatus == http.StatusOK {
		if _, ok := got["error"]; ok {
			tb.Errorf("200 answer carries an error: %s", r.body)
		}
	}
	return got
}

// The PBX's error answers (docs/pbx-api.md, "The two directions").
const (
	invalidParams = `{"error":"Invalid parameters"}`
	invalidToken  = `{"error":"Invalid token"}`
)

// fields is a webhook's fields, encoded as each body type on demand.
type fields map[string]string

// with returns a copy of f with the given key, value pairs set.
func (f fields) with(kv ...string) fields {
	g := maps.Clone(f)
	for i := 0; i+1 < len(kv); i += 2 {
		g[kv[i]] = kv[i+1]
	}
	return g
}

// without returns a copy of f without keys.
func (f fields) without(keys ...string) fields {
	g := maps.Clone(f)
	for _, k := range keys {
		delete(g, k)
	}
	return g
}

func (f fields) form() string {
	vs := url.Values{}
	for k, v := range f {
		vs.Set(k, v)
	}
	return vs.Encode()
}

func (f fields) json() string {
	b, err := json.Marshal(map[string]string(f))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// multipart returns the body and its Content-Type.
func (f fields) multipart() (body, contentType string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if err := mw.WriteField(k, f[k]); err != nil {
			panic(err)
		}
	}
	if err := mw.Close(); err != nil {
		panic(err)
	}
	return buf.String(), mw.FormDataContentType()
}

// The PBX's webhooks as docs/pbx-api.md shows them, each complete and valid.

func eventFields(callID string) fields {
	return fields{
		"cmd": "event", "type": "INCOMING", "phone": "79101234567", "user": "andy@acme",
		"direction": "in", "callid": callID, "crm_token": testToken,
		"diversion": "74950000001", "groupRealName": "Sales", "ext": "101", "telnum": "74950000002",
	}
}

func contactFields(callID string) fields {
	return fields{"cmd": "contact", "phone": "79101234567", "callid": callID, "crm_token": testToken}
}

func historyFields(callID string) fields {
	return fields{
		"cmd": "history", "type": "in", "status": "Success", "phone": "79101234567", "user": "andy@acme",
		"start": "20170703T121110Z", "duration": "124", "link": "https://link/file.mp3",
		"callid": callID, "crm_token": testToken,
		"ext": "101", "groupRealName": "Sales", "telnum": "74950000002", "diversion": "74950000001",
	}
}

// fakePublisher records updates and answers err.
type fakePublisher struct {
	err error

	mu      sync.Mutex
	callIDs []string // guarded by mu
}

var _ event.Publisher = (*fakePublisher)(nil)

func (p *fakePublisher) Update(_ context.Context, callID string, fn event.UpdateFunc) error {
	p.mu.Lock()
	p.callIDs = append(p.callIDs, callID)
	p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	var rec event.CallState
	fn(&rec)
	return nil
}

func (p *fakePublisher) updates() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.callIDs)
}

// blockingDirectory answers only when its ctx is done, as a CRM that hangs.
// Each look-up reports on started whether its ctx had a deadline.
type blockingDirectory struct {
	started chan bool
}

func newBlockingDirectory() *blockingDirectory {
	return &blockingDirectory{started: make(chan bool, 16)}
}

func (d *blockingDirectory) Lookup(ctx context.Context, _ string) (event.Contact, bool, error) {
	_, hasDeadline := ctx.Deadline()
	select {
	case d.started <- hasDeadline:
	default:
	}
	<-ctx.Done()
	return event.Contact{Name: "too late"}, true, ctx.Err()
}

// failingDirectory answers every look-up with an error.
type failingDirectory struct{}

func (failingDirectory) Lookup(context.Context, string) (event.Contact, bool, error) {
	return event.Contact{Name: "never shown"}, true, io.ErrUnexpectedEOF
}
