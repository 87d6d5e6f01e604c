package pbx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/callpop/callpop/internal/backoff"
)

// maxAnswer caps the body the client reads: 32 MiB, room for a month of
// history.
const maxAnswer = 32 << 20

// Client sends commands to the PBX. It is safe for concurrent use. A nil or
// zero Client is valid and answers ErrNotConfigured.
type Client struct {
	url     string
	token   string
	hc      *http.Client
	timeout time.Duration
	retries int
	backoff time.Duration
	log     *zap.Logger
}

// New returns a Client for cfg, filling in the defaults. An empty cfg.URL is
// not an error: the client is then not configured and every method answers
// ErrNotConfigured. A URL that is not an absolute http(s) URL, or a URL
// without a token, is.
func New(cfg Config) (*Client, error) {
	c := &Client{
		url:     cfg.URL,
		token:   cfg.Token,
		hc:      cfg.HTTPClient,
		timeout: cfg.Timeout,
		retries: cfg.Retries,
		backoff: cfg.Backoff,
		log:     cfg.Logger,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.retries == 0 {
		c.retries = DefaultRetries
	}
	if c.backoff <= 0 {
		c.backoff = DefaultBackoff
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("pbx")
	if cfg.URL == "" {
		return c, nil
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pbx: URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("pbx: URL %q: want an absolute http or https URL", u.Redacted())
	}
	if cfg.Token == "" {
		return nil, errors.New("pbx: a token is required with a URL")
	}
	return c, nil
}

// Configured reports whether c has a PBX to talk to.
func (c *Client) Configured() bool { return c != nil && c.url != "" }

// call sends cmd with params, retrying read-only commands, and returns the
// body of a 2xx answer. It blocks until the answer, the last failure, or ctx.
func (c *Client) call(ctx context.Context, cmd string, params url.Values) ([]byte, error) {
	if err := c.ready(cmd); err != nil {
		return nil, err
	}
	attempts := 1
	if IsReadOnly(cmd) && c.retries > 0 {
		attempts += c.retries
	}
	var err error
	for i := range attempts {
		if i > 0 {
			d := backoff.Policy{Base: c.backoff, Max: MaxBackoff}.Delay(i - 1)
			c.log.Debug("retrying", zap.String("cmd", cmd), zap.Int("retry", i), zap.Duration("after", d), zap.Error(err))
			if !backoff.Sleep(ctx, d) {
				break
			}
		}
		var body []byte
		var retry bool
		body, retry, err = c.attempt(ctx, cmd, params)
		if err == nil {
			return body, nil
		}
		if !retry {
			break
		}
	}
	return nil, fmt.Errorf("%s: %w", cmd, err)
}

// attempt sends cmd once. retry reports whether the failure is one a
// read-only command may be retried after: a network error or a 5xx, while
// ctx is still live.
func (c *Client) attempt(ctx context.Context, cmd string, params url.Values) (body []byte, retry bool, err error) {
	actx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	form := make(url.Values, len(params)+2)
	for k, v := range params {
		form[k] = v
	}
	form.Set("cmd", cmd)
	form.Set("token", c.token)
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, false, fmt.Errorf("pbx: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json, text/csv")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, unreachable(ctx, err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode/100 == 2
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		err = unreachable(ctx, err)
		if ok {
			err = fmt.Errorf("%w: %w", errUnreadBody, err)
		}
		return nil, ctx.Err() == nil, err
	}
	if len(body) > maxAnswer {
		err = fmt.Errorf("%w: answer over %d bytes", ErrBadResponse, maxAnswer)
		if ok {
			err = fmt.Errorf("%w: %w", errUnreadBody, err)
		}
		return nil, false, err
	}
	if ok {
		return body, false, nil
	}
	return nil, resp.StatusCode >= 500 && ctx.Err() == nil, &Error{Status: resp.StatusCode, Message: errorMessage(resp.StatusCode, body)}
}

// unreachable wraps a transport failure in ErrUnavailable, unless the
// caller cancelled ctx: then it is the caller's doing, not the PBX's.
func unreachable(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// errorMessage is the "error" text of a documented error answer, else the
// first line of the body, else the status text.
func errorMessage(status int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	if s == "" || !utf8.ValidString(s) {
		return http.StatusText(status)
	}
	return s
}

// ready answers ErrNotConfigured, wrapped with cmd, for a client without a
// URL; methods call it before checking their arguments.
func (c *Client) ready(cmd string) error {
	if !c.Configured() {
		return fmt.Errorf("%s: %w", cmd, ErrNotConfigured)
	}
	return nil
}

// wrapCmd prefixes err with the command it came from.
func wrapCmd(cmd string, err error) error { return fmt.Errorf("%s: %w", cmd, err) }
