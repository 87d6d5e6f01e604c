package contacts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
)

// PhonePlaceholder is what CRMConfig.URLTemplate must contain: each
// occurrence is replaced by the caller's number.
const PhonePlaceholder = "{phone}"

// DefaultCRMTimeout bounds one CRM look-up. The PBX waits for the contact
// answer at most the contact budget (webhook.DefaultContactBudget, 1 s); 800
// ms leaves the rest of it for the built-in directory behind the CRM (Chain)
// and for writing the answer.
const DefaultCRMTimeout = 800 * time.Millisecond

// DefaultCacheTTL is how long a CRM's answer naming a contact is reused: a
// renamed contact or a new responsible manager shows within five minutes,
// while a client calling back (or the PBX asking for the contact and then
// sending the call's events) costs the CRM one request.
const DefaultCacheTTL = 5 * time.Minute

// DefaultNegativeTTL is how long a CRM's "unknown number" is reused; shorter
// than DefaultCacheTTL, since a manager who has just added the caller to the
// CRM wants to see the name on the next call.
const DefaultNegativeTTL = time.Minute

// MaxCRMAnswer is the largest CRM answer body read; a contact answer is a few
// hundred bytes.
const MaxCRMAnswer = 64 << 10

// The longest names accepted from a CRM, in bytes of UTF-8.
const (
	MaxNameLen        = 512 // a company's full legal name in Cyrillic
	MaxResponsibleLen = 128 // a PBX login, possibly with @domain
)

// Errors of a CRM look-up. Transport errors wrap the net/http error (without
// the request URL, which holds the phone number and possibly a CRM key), a
// look-up that ran out of time wraps context.DeadlineExceeded.
var (
	// ErrCRMStatus is a CRM answer with a status other than 200, 204 or 404.
	ErrCRMStatus = errors.New("contacts: unexpected CRM status")
	// ErrCRMAnswer is a CRM answer that is not the expected JSON object, is
	// larger than MaxCRMAnswer, or holds a name that is not plain text.
	ErrCRMAnswer = errors.New("contacts: bad CRM answer")
	// ErrClosed is a look-up on a closed CRM.
	ErrClosed = errors.New("contacts: CRM directory closed")
)

// CRMConfig configures a CRM directory.
type CRMConfig struct {
	// URLTemplate is the CRM's look-up URL, http or https, with
	// PhonePlaceholder where the number goes, e.g.
	// "https://crm.example.com/api/contact?phone={phone}". The number is
	// substituted normalized (see Normalize: digits only, Russian numbers as
	// 7XXXXXXXXXX) and URL-query-escaped. Required.
	URLTemplate string
	// Timeout bounds one look-up, cache read included (a cache read gets at
	// most a quarter of it); a caller's earlier context deadline wins. Zero
	// means DefaultCRMTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a client of the CRM's own
	// (closed by Close). Its own Timeout, if any, applies too.
	HTTPClient *http.Client
	// Header is added to every request, e.g. an Authorization header the CRM
	// wants. Optional; never logged.
	Header http.Header
	// CacheTTL is how long an answer naming a contact is cached. Zero means
	// DefaultCacheTTL; negative means such answers are not cached.
	CacheTTL time.Duration
	// NegativeTTL is how long an "unknown number" answer is cached. Zero
	// means DefaultNegativeTTL; negative means such answers are not cached.
	NegativeTTL time.Duration
}

// CRM is an event.Directory that asks the customer's CRM over HTTP:
//
//	GET <URLTemplate with the number>   (with Header, Accept: application/json)
//
// and expects 200 with a JSON object: {"contact_name": "…", "responsible":
// "andy"} (the shape of the PBX's own contact answer, so a CRM can reuse the
// endpoint it serves the PBX) or {"name": "…", "responsible": "…"}; other
// fields are ignored. An object naming neither, a 404 and a 204 mean an
// unknown number. Answers, known and unknown, are cached; errors are not.
//
// Concurrent look-ups of one number share one request. The request runs on
// after a caller's deadline passes, up to Timeout, so that its answer is
// cached for the next look-up (the PBX asks for the contact and then sends
// the call's event for the same number). Safe for concurrent use.
type CRM struct {
	cfg       CRMConfig
	client    *http.Client
	ownClient bool
	cache     Cache
	log       *zap.Logger

	base context.Context // cancelled by Close; the requests' parent
	stop context.CancelFunc
	wg   sync.WaitGroup // one per flight

	mu      sync.Mutex
	flights map[string]*flight // guarded by mu; by normalized number
	closed  bool               // guarded by mu
}

var _ event.Directory = (*CRM)(nil)

// flight is one look-up of a number, shared by every caller asking for it
// meanwhile. The result fields are written before done is closed.
type flight struct {
	done    chan struct{}
	waiters int // guarded by CRM.mu; callers waiting, for tests
	answer  Answer
	err     error
}

// NewCRM returns a CRM directory caching its answers in cache (nil: a
// private NewMemoryCache with the default size). log may be nil.
func NewCRM(cfg CRMConfig, cache Cache, log *zap.Logger) (*CRM, error) {
	if err := checkTemplate(cfg.URLTemplate); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultCRMTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	cfg.Header = cfg.Header.Clone()
	c := &CRM{cfg: cfg, client: cfg.HTTPClient, cache: cache, flights: make(map[string]*flight)}
	if c.client == nil {
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.ownClient = true
	}
	if c.cache == nil {
		c.cache = NewMemoryCache(MemoryCacheConfig{})
	}
	if log == nil {
		log = zap.NewNop()
	}
	c.log = log.Named("contacts")
	c.base, c.stop = context.WithCancel(context.Background())
	return c, nil
}

func checkTemplate(tmpl string) error {
	if !strings.Contains(tmpl, PhonePlaceholder) {
		return fmt.Errorf("contacts: CRM URL template needs %s", PhonePlaceholder)
	}
	u, err := url.Parse(strings.ReplaceAll(tmpl, PhonePlaceholder, "79101234567"))
	if err != nil {
		return errors.New("contacts: CRM URL template is not a URL") // url.Error would print the URL
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("contacts: CRM URL template must be an http:// or https:// URL")
	}
	return nil
}

// Lookup asks the cache, then the CRM, for phone. It blocks until the answer
// comes, Timeout passes or ctx is done, whichever is first. A number without
// digits is unknown without asking.
func (c *CRM) Lookup(ctx context.Context, phone string) (event.Contact, bool, error) {
	p := Normalize(phone)
	if p == "" {
		return event.Contact{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	f, err := c.join(p)
	if err != nil {
		return event.Contact{}, false, err
	}
	defer c.leave(f)
	select {
	case <-f.done:
		return f.answer.Contact, f.answer.Known, f.err
	case <-ctx.Done():
		return event.Contact{}, false, fmt.Errorf("contacts: CRM look-up unfinished: %w", ctx.Err())
	}
}

// Close cancels the CRM requests in flight, waits for them to end and for
// answers already in hand to be cached (at most a quarter of Timeout), and
// releases the CRM's own HTTP client. Later look-ups fail with ErrClosed.
// Close does not close the cache. It is safe to call more than once.
func (c *CRM) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
	if c.ownClient {
		c.client.CloseIdleConnections()
	}
	return nil
}

// join returns the flight for number p, starting one when there is none.
func (c *CRM) join(p string) (*flight, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	f := c.flights[p]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flights[p] = f
		c.wg.Add(1)
		go c.fly(p, f)
	}
	f.waiters++
	return f, nil
}

func (c *CRM) leave(f *flight) {
	c.mu.Lock()
	f.waiters--
	c.mu.Unlock()
}

// fly resolves number p for f's callers, then caches the answer. While the
// answer is being cached the flight stays joinable, so no caller in between
// asks the CRM again; otherwise it is gone before its callers are told, so
// whoever asks after them asks anew.
func (c *CRM) fly(p string, f *flight) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.base, c.cfg.Timeout)
	defer cancel()
	var cached bool
	f.answer, cached, f.err = c.resolve(ctx, p)
	ttl := c.cfg.CacheTTL
	if !f.answer.Known {
		ttl = c.cfg.NegativeTTL
	}
	if f.err != nil || cached || ttl <= 0 {
		c.land(p)
		close(f.done)
		return
	}
	close(f.done)
	// A fresh bound, not cancelled by Close: the request may have used up
	// ctx, and an answer in hand is worth keeping.
	sctx, scancel := context.WithTimeout(context.Background(), c.cacheTimeout())
	if err := c.cache.Set(sctx, p, f.answer, ttl); err != nil {
		c.log.Warn("contact cache write failed", zap.Error(err))
	}
	scancel()
	c.land(p)
}

// land ends the flight for number p.
func (c *CRM) land(p string) {
	c.mu.Lock()
	delete(c.flights, p)
	c.mu.Unlock()
}

func (c *CRM) cacheTimeout() time.Duration { return c.cfg.Timeout / 4 }

// resolve answers from the cache, or else from the CRM; cached reports which.
func (c *CRM) resolve(ctx context.Context, p string) (a Answer, cached bool, err error) {
	gctx, gcancel := context.WithTimeout(ctx, c.cacheTimeout())
	a, hit, err := c.cache.Get(gctx, p)
	gcancel()
	switch {
	case err != nil:
		c.log.Warn("contact cache read failed; asking the CRM", zap.Error(err))
	case hit:
		return a, true, nil
	}
	a, err = c.fetch(ctx, p)
	if err != nil {
		if c.base.Err() == nil { // not a shutdown
			c.log.Warn("CRM contact look-up failed", zap.Error(err))
		}
		return Answer{}, false, err
	}
	if ce := c.log.Check(zap.DebugLevel, "CRM contact look-up"); ce != nil {
		ce.Write(zap.String("phone", p), zap.Bool("known", a.Known))
	}
	return a, false, nil
}

// fetch asks the CRM for number p.
func (c *CRM) fetch(ctx context.Context, p string) (Answer, error) {
	u := strings.ReplaceAll(c.cfg.URLTemplate, PhonePlaceholder, url.QueryEscape(p))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Answer{}, errors.New("contacts: CRM request: bad URL")
	}
	if c.cfg.Header != nil {
		req.Header = c.cfg.Header.Clone()
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Answer{}, transportError(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusNoContent:
		_, _ = io.CopyN(io.Discard, resp.Body, MaxCRMAnswer) // keeps the connection reusable
		return Answer{}, nil
	default:
		_, _ = io.CopyN(io.Discard, resp.Body, MaxCRMAnswer)
		return Answer{}, fmt.Errorf("%w %d", ErrCRMStatus, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCRMAnswer+1))
	if err != nil {
		return Answer{}, transportError(err)
	}
	if len(body) > MaxCRMAnswer {
		return Answer{}, fmt.Errorf("%w: larger than %d bytes", ErrCRMAnswer, MaxCRMAnswer)
	}
	return parseAnswer(body)
}

// transportError drops the request URL from a net/http error: it holds the
// caller's number and perhaps a key of the CRM's.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("contacts: CRM request: %w", err)
}

// parseAnswer reads a CRM's answer body: a JSON object with contact_name
// (or name) and responsible, both optional strings; other fields are ignored.
// Names are trimmed of surrounding space; an answer naming neither a contact
// nor a responsible manager is an unknown number. It fails with ErrCRMAnswer
// on anything else: not a JSON object, invalid UTF-8, control characters or
// names longer than MaxNameLen / MaxResponsibleLen.
func parseAnswer(body []byte) (Answer, error) {
	if !utf8.Valid(body) {
		return Answer{}, fmt.Errorf("%w: invalid UTF-8", ErrCRMAnswer)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Answer{}, fmt.Errorf("%w: not a JSON object", ErrCRMAnswer)
	}
	var v struct {
		ContactName *string `json:"contact_name"`
		Name        *string `json:"name"`
		Responsible *string `json:"responsible"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Answer{}, fmt.Errorf("%w: %w", ErrCRMAnswer, err)
	}
	name := field(v.ContactName)
	if name == "" {
		name = field(v.Name)
	}
	resp := field(v.Responsible)
	if err := checkText("name", name, MaxNameLen); err != nil {
		return Answer{}, err
	}
	if err := checkText("responsible", resp, MaxResponsibleLen); err != nil {
		return Answer{}, err
	}
	c := event.Contact{Name: name, Responsible: resp}
	return Answer{Contact: c, Known: c != event.Contact{}}, nil
}

func field(s *string) string {
	if s == nil {
		return ""
	}
	return strings.TrimSpace(*s)
}

// checkText refuses what a popup card or the PBX's phone display should not
// get: control characters, U+FFFD (what encoding/json makes of a broken
// escape) and over-long text.
func checkText(what, s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrCRMAnswer, what, max)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) >= 0:
		return fmt.Errorf("%w: %s is not plain text", ErrCRMAnswer, what)
	}
	return nil
}
