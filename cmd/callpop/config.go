package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/internal/guard"
	"github.com/callpop/callpop/webhook"
)

// config is every setting of `callpop serve` (docs/contract.md "Processes and
// configuration"). Each flag has an environment twin; a flag given on the
// command line wins over the environment.
type config struct {
	Addr              string
	CRMToken          string
	JWTSecret         string
	RedisURL          string
	AllowedOrigins    string
	PBXURL            string
	PBXToken          string
	ContactURL        string
	Contacts          string
	HistoryForwardURL string
	TLSCert           string
	TLSKey            string
	LogLevel          string
	ContactBudget     time.Duration
	ShutdownTimeout   time.Duration
	TrustedProxies    string
	WebhookAllow      string
	AdminAddr         string
	DataDir           string
	tenantConfig      // tenants.go

	webhookRate float64
	connectRate float64
	maxSessions int

	origins      auth.Origins
	logLevel     zapcore.Level
	trusted      []netip.Prefix
	webhookAllow []netip.Prefix
}

// Defaults of settings that have one.
const (
	defaultAddr = ":8080"
	// defaultDemoAddr keeps the demo on this machine: its /demo/token hands
	// a widget token to anyone who asks.
	defaultDemoAddr = "127.0.0.1:8080"
	// defaultShutdownTimeout bounds draining sockets on SIGTERM; Kubernetes'
	// default grace period is 30 s.
	defaultShutdownTimeout = 20 * time.Second
	// minCRMTokenLen is the shortest crm_token serve accepts: the PBX sends
	// it with every webhook to a public endpoint, so it must not be
	// guessable.
	minCRMTokenLen = 16
)

// flags registers every setting on f; cmd is "serve" or "demo", whose
// defaults and notes differ.
func (c *config) flags(f *flagSet, cmd string) {
	addr := defaultAddr
	crmToken := fmt.Sprintf("the crm_token the PBX sends with every webhook, ≥ %d characters (required)", minCRMTokenLen)
	jwtSecret := fmt.Sprintf("HS256 secret shared with the CRM backend that mints widget tokens, ≥ %d bytes (required)", auth.MinSecretLen)
	if cmd == "demo" { // the demo makes its secrets up
		addr = defaultDemoAddr
		crmToken = "the crm_token the simulated PBX sends (generated when empty)"
		jwtSecret = "HS256 secret of the demo's widget tokens (generated when empty)"
	}
	f.String(&c.Addr, "addr", "CALLPOP_ADDR", addr, "listen address")
	f.String(&c.CRMToken, "crm-token", "CALLPOP_CRM_TOKEN", "", crmToken)
	f.String(&c.JWTSecret, "jwt-secret", "CALLPOP_JWT_SECRET", "", jwtSecret)
	f.String(&c.RedisURL, "redis-url", "CALLPOP_REDIS_URL", "", "redis://…, redis-sentinel://… or redis-cluster://… for a cluster; empty = embedded single-node broker")
	f.String(&c.AllowedOrigins, "allowed-origins", "CALLPOP_ALLOWED_ORIGINS", "", "comma list of CRM origins allowed to open the socket / call the API; empty = same origin only")
	f.String(&c.PBXURL, "pbx-url", "CALLPOP_PBX_URL", "", "the PBX API URL (…/sys/crm_api.wcgp); empty = PBX actions answer 503")
	f.String(&c.PBXToken, "pbx-token", "CALLPOP_PBX_TOKEN", "", "the PBX API token")
	f.String(&c.ContactURL, "contact-url", "CALLPOP_CONTACT_URL", "", "CRM look-up URL template with {phone}; empty = built-in directory")
	f.String(&c.Contacts, "contacts", "CALLPOP_CONTACTS", "", "CSV file (phone,name,responsible) for the built-in directory")
	f.String(&c.HistoryForwardURL, "history-forward-url", "CALLPOP_HISTORY_FORWARD_URL", "", "CRM URL that receives every call record")
	f.String(&c.TLSCert, "tls-cert", "CALLPOP_TLS_CERT", "", "TLS certificate file: serve HTTPS directly")
	f.String(&c.TLSKey, "tls-key", "CALLPOP_TLS_KEY", "", "TLS key file")
	f.String(&c.LogLevel, "log-level", "CALLPOP_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	f.Duration(&c.ContactBudget, "contact-budget", "CALLPOP_CONTACT_BUDGET", webhook.DefaultContactBudget, "longest a contact look-up may keep the PBX waiting")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", "CALLPOP_SHUTDOWN_TIMEOUT", defaultShutdownTimeout, "longest a SIGTERM drain may take")
	f.String(&c.TrustedProxies, "trusted-proxies", "CALLPOP_TRUSTED_PROXIES", "", "comma list of proxy addresses/CIDRs whose X-Forwarded-For is believed")
	f.String(&c.WebhookAllow, "webhook-allow", "CALLPOP_WEBHOOK_ALLOW", "", "comma list of CIDRs the PBX posts from; empty = any")
	f.Float(&c.webhookRate, "webhook-rate", "CALLPOP_WEBHOOK_RATE", 10000, "webhooks per second per source address (bursts of twice that); 0 = no limit")
	f.Float(&c.connectRate, "connect-rate", "CALLPOP_CONNECT_RATE", 200, "socket connections per second per client address (bursts of twice that); 0 = no limit")
	f.String(&c.DataDir, "data-dir", "CALLPOP_DATA_DIR", "./callpop-data", "directory for durable local state (the history forward journal) on the embedded broker")
	f.String(&c.AdminAddr, "admin-addr", "CALLPOP_ADMIN_ADDR", "", "listen address of the admin listener (pprof; the tenant admin API with --admin-token); empty = off. Keep it on loopback")
	f.Int(&c.maxSessions, "max-sessions-per-user", "CALLPOP_MAX_SESSIONS_PER_USER", 32, "open sockets one user may hold on one node")
	c.tenantFlags(f)
}

// parseConfig reads flags from args over the environment from getenv.
// requireSecrets is false for commands that do not serve webhooks. A
// request for help returns flag.ErrHelp.
func parseConfig(name string, args []string, getenv func(string) string, requireSecrets bool) (*config, error) {
	return parseConfigHelp(name, args, getenv, requireSecrets, io.Discard)
}

// parseConfigHelp is parseConfig that writes the help, when asked for, to
// help.
func parseConfigHelp(name string, args []string, getenv func(string) string, requireSecrets bool, help io.Writer) (*config, error) {
	c := &config{}
	f := newFlagSet(name)
	c.flags(f, name)
	if err := f.parse(args, getenv, help); err != nil {
		return nil, err
	}
	return c, c.validate(requireSecrets)
}

// validate checks each setting and names the first one that is wrong. It
// never repeats a secret or a URL (a URL may carry a password or a token).
func (c *config) validate(requireSecrets bool) error {
	if requireSecrets {
		if utf8.RuneCountInString(c.CRMToken) < minCRMTokenLen {
			return fmt.Errorf("--crm-token (CALLPOP_CRM_TOKEN) is required, at least %d characters", minCRMTokenLen)
		}
		if len(c.JWTSecret) < auth.MinSecretLen {
			return fmt.Errorf("--jwt-secret (CALLPOP_JWT_SECRET) is required, at least %d bytes", auth.MinSecretLen)
		}
	}
	var err error
	if c.origins, err = auth.ParseOrigins(c.AllowedOrigins); err != nil {
		return fmt.Errorf("--allowed-origins (CALLPOP_ALLOWED_ORIGINS): %w", err)
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseClientURL(c.RedisURL); err != nil {
			return fmt.Errorf("--redis-url (CALLPOP_REDIS_URL): %w", err)
		}
	}
	for _, u := range []struct{ name, v string }{
		{"--pbx-url (CALLPOP_PBX_URL)", c.PBXURL},
		{"--history-forward-url (CALLPOP_HISTORY_FORWARD_URL)", c.HistoryForwardURL},
		{"--contact-url (CALLPOP_CONTACT_URL)", strings.ReplaceAll(c.ContactURL, "{phone}", "0")},
	} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s: not an http(s) URL with a host (the value is not shown: it may hold a credential)", u.name)
		}
	}
	if c.ContactURL != "" && !strings.Contains(c.ContactURL, "{phone}") {
		return errors.New("--contact-url (CALLPOP_CONTACT_URL): the template needs {phone}")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key (CALLPOP_TLS_CERT, CALLPOP_TLS_KEY) go together")
	}
	if c.logLevel, err = zapcore.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("--log-level (CALLPOP_LOG_LEVEL): %w", err)
	}
	if c.trusted, err = guard.ParsePrefixes(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies (CALLPOP_TRUSTED_PROXIES): %w", err)
	}
	if c.webhookAllow, err = guard.ParsePrefixes(c.WebhookAllow); err != nil {
		return fmt.Errorf("--webhook-allow (CALLPOP_WEBHOOK_ALLOW): %w", err)
	}
	if err := c.validateTenants(); err != nil {
		return err
	}
	// Numbers and durations are checked as they are set (flags.go).
	return nil
}
