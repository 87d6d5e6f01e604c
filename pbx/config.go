package pbx

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// DefaultTimeout bounds one attempt of one command (connect, send, read the
// whole answer): 5 s. The PBX holds nothing for us, so an answer later than
// that means it is in trouble; a read-only command is then retried.
const DefaultTimeout = 5 * time.Second

// DefaultRetries is how many times a read-only command is retried after a
// network error or a 5xx answer: 2, so at most three attempts.
const DefaultRetries = 2

// DefaultBackoff is the pause before the first retry: 100 ms. It doubles with
// every further retry, up to MaxBackoff, and is jittered.
const DefaultBackoff = 100 * time.Millisecond

// MaxBackoff caps the pause between two retries: 2 s.
const MaxBackoff = 2 * time.Second

// Config configures a Client.
type Config struct {
	// URL is the PBX's API address from its web cabinet, for example
	// https://domain/sys/crm_api.wcgp. Empty means not configured: every
	// method then answers ErrNotConfigured. Otherwise it must be an absolute
	// http or https URL.
	URL string
	// Token is the PBX's API key, sent as the form field token. Required
	// when URL is set.
	Token string
	// HTTPClient sends the requests. Nil means a client of its own on
	// http.DefaultTransport; Timeout bounds each attempt either way.
	HTTPClient *http.Client
	// Timeout bounds each attempt. Zero means DefaultTimeout; negative means
	// no bound but the caller's context.
	Timeout time.Duration
	// Retries is how many times a read-only command is retried. Zero means
	// DefaultRetries; negative means never.
	Retries int
	// Backoff is the pause before the first retry. Zero means
	// DefaultBackoff.
	Backoff time.Duration
	// Logger receives retries at debug level. Nil means no logging.
	Logger *zap.Logger
}
