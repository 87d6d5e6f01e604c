package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/internal/guard"
	"github.com/callpop/callpop/webhook"
)

// config is every setting of `callpop serve` (CONTRACT.md "Processes and
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
	WebhookRate       string
	ConnectRate       string
	MaxSessions       string
	AdminAddr         string
	DataDir           string

	origins      auth.Origins
	logLevel     zapcore.Level
	trusted      []netip.Prefix
	webhookAllow []netip.Prefix
	webhookRate  float64
	connectRate  float64
	maxSessions  int
}

// Defaults of settings that have one.
const (
	defaultAddr = ":8080"
	// defaultShutdownTimeout bounds draining sockets on SIGTERM; Kubernetes'
	// default grace period is 30 s.
	defaultShutdownTimeout = 20 * time.Second
)

type setting struct {
	env, flag, usage string
	str              *string
	dur              *time.Duration
	def              string
}

func (c *config) settings() []setting {
	return []setting{
		{"CALLPOP_ADDR", "addr", "listen address", &c.Addr, nil, defaultAddr},
		{"CALLPOP_CRM_TOKEN", "crm-token", "the crm_token the PBX sends with every webhook (required)", &c.CRMToken, nil, ""},
		{"CALLPOP_JWT_SECRET", "jwt-secret", "HS256 secret shared with the CRM backend that mints widget tokens, ≥32 bytes (required)", &c.JWTSecret, nil, ""},
		{"CALLPOP_REDIS_URL", "redis-url", "redis://… for a cluster; empty = embedded single-node broker", &c.RedisURL, nil, ""},
		{"CALLPOP_ALLOWED_ORIGINS", "allowed-origins", "comma list of CRM origins allowed to open the socket / call the API; empty = same origin only", &c.AllowedOrigins, nil, ""},
		{"CALLPOP_PBX_URL", "pbx-url", "the PBX API URL (…/sys/crm_api.wcgp); empty = PBX actions answer 503", &c.PBXURL, nil, ""},
		{"CALLPOP_PBX_TOKEN", "pbx-token", "the PBX API token", &c.PBXToken, nil, ""},
		{"CALLPOP_CONTACT_URL", "contact-url", "CRM look-up URL template with {phone}; empty = built-in directory", &c.ContactURL, nil, ""},
		{"CALLPOP_CONTACTS", "contacts", "CSV file (phone,name,responsible) for the built-in directory", &c.Contacts, nil, ""},
		{"CALLPOP_HISTORY_FORWARD_URL", "history-forward-url", "CRM URL that receives every call record", &c.HistoryForwardURL, nil, ""},
		{"CALLPOP_TLS_CERT", "tls-cert", "TLS certificate file: serve HTTPS directly", &c.TLSCert, nil, ""},
		{"CALLPOP_TLS_KEY", "tls-key", "TLS key file", &c.TLSKey, nil, ""},
		{"CALLPOP_LOG_LEVEL", "log-level", "log level: debug, info, warn, error", &c.LogLevel, nil, "info"},
		{"CALLPOP_CONTACT_BUDGET", "contact-budget", "longest a contact look-up may keep the PBX waiting", nil, &c.ContactBudget, webhook.DefaultContactBudget.String()},
		{"CALLPOP_SHUTDOWN_TIMEOUT", "shutdown-timeout", "longest a SIGTERM drain may take", nil, &c.ShutdownTimeout, defaultShutdownTimeout.String()},
		{"CALLPOP_TRUSTED_PROXIES", "trusted-proxies", "comma list of proxy addresses/CIDRs whose X-Forwarded-For is believed", &c.TrustedProxies, nil, ""},
		{"CALLPOP_WEBHOOK_ALLOW", "webhook-allow", "comma list of CIDRs the PBX posts from; empty = any", &c.WebhookAllow, nil, ""},
		{"CALLPOP_WEBHOOK_RATE", "webhook-rate", "webhooks per second per source address (bursts of twice that); 0 = no limit", &c.WebhookRate, nil, "10000"},
		{"CALLPOP_CONNECT_RATE", "connect-rate", "socket connections per second per client address (bursts of twice that); 0 = no limit", &c.ConnectRate, nil, "200"},
		{"CALLPOP_DATA_DIR", "data-dir", "directory for durable local state (the history forward journal) on the embedded broker", &c.DataDir, nil, "./callpop-data"},
		{"CALLPOP_ADMIN_ADDR", "admin-addr", "listen address of the admin listener (pprof); empty = off. Keep it on loopback", &c.AdminAddr, nil, ""},
		{"CALLPOP_MAX_SESSIONS_PER_USER", "max-sessions-per-user", "open sockets one user may hold on one node", &c.MaxSessions, nil, "32"},
	}
}

// parseConfig reads flags from args over the environment from getenv.
// requireSecrets is false for commands that do not serve webhooks.
func parseConfig(name string, args []string, getenv func(string) string, requireSecrets bool) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var errs []error
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		if s.str != nil {
			fs.StringVar(s.str, s.flag, def, usage)
			continue
		}
		d, err := time.ParseDuration(def)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration", s.env, def))
		}
		fs.DurationVar(s.dur, s.flag, d, usage)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate(requireSecrets)
}

// validate checks each setting and names the first one that is wrong.
func (c *config) validate(requireSecrets bool) error {
	if requireSecrets {
		if c.CRMToken == "" {
			return errors.New("--crm-token (CALLPOP_CRM_TOKEN) is required")
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
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
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
			return fmt.Errorf("%s: %q is not an http(s) URL", u.name, u.v)
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
	for _, n := range []struct {
		name, v string
		dst     *float64
	}{
		{"--webhook-rate (CALLPOP_WEBHOOK_RATE)", c.WebhookRate, &c.webhookRate},
		{"--connect-rate (CALLPOP_CONNECT_RATE)", c.ConnectRate, &c.connectRate},
	} {
		if *n.dst, err = strconv.ParseFloat(n.v, 64); err != nil || *n.dst < 0 {
			return fmt.Errorf("%s: %q is not a non-negative number", n.name, n.v)
		}
	}
	if c.maxSessions, err = strconv.Atoi(c.MaxSessions); err != nil || c.maxSessions < 1 {
		return fmt.Errorf("--max-sessions-per-user (CALLPOP_MAX_SESSIONS_PER_USER): %q is not a positive integer", c.MaxSessions)
	}
	if c.ContactBudget <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("--contact-budget and --shutdown-timeout must be positive")
	}
	return nil
}
