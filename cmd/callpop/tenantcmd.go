package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/tenant/file"
	tredis "github.com/callpop/callpop/tenant/redis"
)

const tenantUsage = `usage: callpop tenant <command> [ID] [flags]

commands:
  add ID           add a tenant (secrets not given are generated and printed once)
  list             list the tenants (secrets as fingerprints)
  show ID          print one tenant (secrets as fingerprints)
  update ID        change settings given as flags
  enable ID        accept the tenant's webhooks and sockets again
  disable ID       refuse the tenant's webhooks and close its sockets
  rotate-token ID  new crm_token (or --secret jwt_secret); old ones valid for --grace
  delete ID        remove the tenant

The registry is the file --tenants-file (CALLPOP_TENANTS_FILE), or Redis when
--redis-url (CALLPOP_REDIS_URL) is set. Secrets never go in flags: name an
environment variable holding one (--crm-token-env NAME), pipe it on stdin
(--…-stdin), or let callpop generate it.
Run "callpop tenant <command> -h" for the command's flags.
`

// tenantCmd is one `callpop tenant` command's flags.
type tenantCmd struct {
	fs                    *flagSet
	file, redisURL        string
	crmTokenEnv, jwtEnv   string
	crmTokenStdin         bool
	pbxTokenEnv           string
	pbxURL, jwksURL       string
	publicKeyFiles        string
	origins               string
	contactURL, forward   string
	sessions              string
	rate                  float64
	disabled, asJSON      bool
	secret, grace, valEnv string
	valStdin              bool
	stdin                 io.Reader // where --…-stdin secrets are read
}

func (c *tenantCmd) settingFlags() {
	c.fs.String(&c.pbxURL, "pbx-url", "", "", "the tenant's PBX API URL (…/sys/crm_api.wcgp)")
	c.fs.String(&c.pbxTokenEnv, "pbx-token-env", "", "", "name of an environment variable holding the PBX API token")
	c.fs.String(&c.jwksURL, "jwks-url", "", "", "JWKS URL whose keys verify the tenant's widget tokens (RS256/ES256)")
	c.fs.String(&c.publicKeyFiles, "jwt-public-keys", "", "", "comma list of PEM files of public keys that verify the tenant's widget tokens")
	c.fs.String(&c.origins, "allowed-origins", "", "", "comma list of the tenant's CRM origins")
	c.fs.String(&c.contactURL, "contact-url", "", "", "the tenant's CRM look-up URL template with {phone}")
	c.fs.String(&c.forward, "history-forward-url", "", "", "the tenant's CRM URL that receives call records")
	c.fs.String(&c.sessions, "sessions-per-user", "", "", "open sockets one user of the tenant may hold; 0 = the node's default")
	c.fs.Float(&c.rate, "webhook-rate", "", 0, "the tenant's webhooks per second; 0 = the node's default")
}

// runTenant is `callpop tenant …`; secrets asked for on stdin are read
// from stdin.
func runTenant(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, tenantUsage)
		return errors.New("tenant: no command")
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprint(stdout, tenantUsage)
		return nil
	}
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	c := &tenantCmd{fs: newFlagSet("tenant " + sub), stdin: stdin}
	c.fs.String(&c.file, "tenants-file", "CALLPOP_TENANTS_FILE", "", "the registry's JSON file (without --redis-url)")
	c.fs.String(&c.redisURL, "redis-url", "CALLPOP_REDIS_URL", "", "redis://… : the registry in Redis")
	needID := true
	switch sub {
	case "add":
		c.settingFlags()
		c.fs.String(&c.crmTokenEnv, "crm-token-env", "", "", "name of an environment variable holding the crm_token (generated when empty)")
		c.fs.Bool(&c.crmTokenStdin, "crm-token-stdin", "read the crm_token from the first line of stdin")
		c.fs.String(&c.jwtEnv, "jwt-secret-env", "", "", "name of an environment variable holding the HS256 secret (generated when empty and no --jwks-url / --jwt-public-keys)")
		c.fs.Bool(&c.disabled, "disabled", "add the tenant disabled")
	case "update":
		c.settingFlags()
	case "list":
		needID = false
		c.fs.Bool(&c.asJSON, "json", "print JSON instead of a table")
	case "rotate-token":
		c.fs.String(&c.secret, "secret", "", tenant.SecretCRMToken, "which secret: crm_token or jwt_secret")
		c.fs.String(&c.grace, "grace", "", tenant.DefaultGrace.String(), "how long the old values stay valid (0s: not at all)")
		c.fs.String(&c.valEnv, "value-env", "", "", "name of an environment variable holding the new value (generated when empty)")
		c.fs.Bool(&c.valStdin, "value-stdin", "read the new value from the first line of stdin")
	case "show", "enable", "disable", "delete":
	default:
		return fmt.Errorf("tenant: unknown command %q (callpop tenant -h lists the commands)", sub)
	}
	if err := c.fs.parse(args, getenv, stdout); err != nil {
		return err
	}
	if needID && id == "" {
		return fmt.Errorf("tenant %s: the tenant ID is required: callpop tenant %s ID", sub, sub)
	}
	store, closeStore, err := c.open()
	if err != nil {
		return err
	}
	defer closeStore()
	return c.do(ctx, sub, id, store, getenv, stdout)
}

// open returns the registry the flags name.
func (c *tenantCmd) open() (tenant.Manager, func(), error) {
	switch {
	case c.redisURL != "":
		rdb, err := redis.NewClient(c.redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("--redis-url (CALLPOP_REDIS_URL): %w", err)
		}
		return tredis.New(rdb, tredis.Config{}, zap.NewNop()), func() { _ = rdb.Close() }, nil
	case c.file != "":
		st, err := file.Open(c.file, file.Config{}, zap.NewNop())
		if err != nil {
			return nil, nil, fmt.Errorf("--tenants-file (CALLPOP_TENANTS_FILE): %w", err)
		}
		return st, func() {}, nil
	}
	return nil, nil, errors.New("--tenants-file (CALLPOP_TENANTS_FILE) or --redis-url (CALLPOP_REDIS_URL) is required")
}

func (c *tenantCmd) do(ctx context.Context, sub, id string, store tenant.Manager, getenv func(string) string, stdout io.Writer) error {
	switch sub {
	case "add":
		spec := tenant.Spec{ID: id}
		var err error
		if spec.CRMToken, err = c.secretFrom("--crm-token-env", c.crmTokenEnv, c.crmTokenStdin, getenv); err != nil {
			return err
		}
		if spec.JWTSecret, err = c.secretFrom("--jwt-secret-env", c.jwtEnv, false, getenv); err != nil {
			return err
		}
		if spec.Patch, err = c.patch(getenv); err != nil {
			return err
		}
		if c.disabled {
			off := false
			spec.Enabled = &off
		}
		t, generated, err := spec.New()
		if err != nil {
			return err
		}
		if err := store.Create(ctx, t); err != nil {
			return err
		}
		if err := printView(stdout, t); err != nil {
			return err
		}
		printGenerated(stdout, generated)
		return nil
	case "list":
		ts, err := store.List(ctx)
		if err != nil {
			return err
		}
		return printList(stdout, ts, c.asJSON)
	case "show":
		ts, err := store.List(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.ID == id {
				return printView(stdout, t)
			}
		}
		return fmt.Errorf("tenant %q: %w", id, tenant.ErrNotFound)
	case "update", "enable", "disable":
		p, err := c.patch(getenv)
		if err != nil {
			return err
		}
		if sub != "update" {
			on := sub == "enable"
			p.Enabled = &on
		}
		t, err := store.Update(ctx, id, func(t *tenant.Tenant) error { p.Apply(t); return nil })
		if err != nil {
			return fmt.Errorf("tenant %q: %w", id, err)
		}
		return printView(stdout, t)
	case "rotate-token":
		grace, err := time.ParseDuration(c.grace)
		if err != nil {
			return errors.New("--grace: want a duration like 24h or 0s")
		}
		value, err := c.secretFrom("--value-env", c.valEnv, c.valStdin, getenv)
		if err != nil {
			return err
		}
		var generated string
		t, err := store.Update(ctx, id, func(t *tenant.Tenant) error {
			g, rerr := t.Rotate(c.secret, value, time.Now(), grace)
			generated = g
			return rerr
		})
		if err != nil {
			return fmt.Errorf("tenant %q: %w", id, err)
		}
		if err := printView(stdout, t); err != nil {
			return err
		}
		if generated != "" {
			printGenerated(stdout, map[string]string{c.secret: generated})
		}
		fmt.Fprintf(stdout, "%s rotated; the previous values stay valid for %v\n", c.secret, grace)
		return nil
	case "delete":
		if err := store.Delete(ctx, id); err != nil {
			return fmt.Errorf("tenant %q: %w", id, err)
		}
		fmt.Fprintf(stdout, "tenant %s deleted\n", id)
		return nil
	}
	return nil
}

// patch is the settings given as flags: only those set on the command line.
func (c *tenantCmd) patch(getenv func(string) string) (tenant.Patch, error) {
	var p tenant.Patch
	var err error // the first, so the error stays one line
	fail := func(e error) {
		if err == nil {
			err = e
		}
	}
	c.fs.fs.Visit(func(f *flag.Flag) {
		str := func(v string) *string { return &v }
		list := func(v string) *[]string { l := strings.Split(v, ","); return &l }
		switch f.Name {
		case "pbx-url":
			p.PBXURL = str(c.pbxURL)
		case "pbx-token-env":
			tok, e := c.secretFrom("--pbx-token-env", c.pbxTokenEnv, false, getenv)
			if e != nil {
				fail(e)
			}
			p.PBXToken = &tok
		case "jwks-url":
			p.JWKSURL = str(c.jwksURL)
		case "jwt-public-keys":
			var keys []string
			for _, name := range strings.Split(c.publicKeyFiles, ",") {
				if name = strings.TrimSpace(name); name == "" {
					continue
				}
				b, e := os.ReadFile(name)
				if e != nil {
					fail(fmt.Errorf("--jwt-public-keys: %w", e))
				}
				keys = append(keys, string(b))
			}
			p.JWTPublicKeys = &keys
		case "allowed-origins":
			p.AllowedOrigins = list(c.origins)
		case "contact-url":
			p.ContactURL = str(c.contactURL)
		case "history-forward-url":
			p.HistoryForwardURL = str(c.forward)
		case "sessions-per-user":
			n, e := strconv.Atoi(c.sessions)
			if e != nil || n < 0 {
				fail(errors.New("--sessions-per-user: want a non-negative integer"))
			}
			p.SessionsPerUser = &n
		case "webhook-rate":
			p.WebhookRate = &c.rate
		}
	})
	return p, err
}

// secretFrom reads a secret from the environment variable named by
// envName, or from stdin's first line; "" when neither is asked for.
func (c *tenantCmd) secretFrom(flagName, envName string, fromStdin bool, getenv func(string) string) (string, error) {
	switch {
	case envName != "" && fromStdin:
		return "", fmt.Errorf("%s and stdin: give the secret one way", flagName)
	case envName != "":
		v := getenv(envName)
		if v == "" {
			return "", fmt.Errorf("%s: the environment variable %s is empty or unset", flagName, envName)
		}
		return v, nil
	case fromStdin:
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", fmt.Errorf("stdin: no secret on the first line (%v)", err)
		}
		return line, nil
	}
	return "", nil
}

func printView(w io.Writer, t *tenant.Tenant) error {
	b, err := json.MarshalIndent(t.Redacted(), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printGenerated shows generated secrets: this is the only time they are
// ever shown.
func printGenerated(w io.Writer, generated map[string]string) {
	for _, name := range []string{tenant.SecretCRMToken, tenant.SecretJWTSecret} {
		if v, ok := generated[name]; ok {
			fmt.Fprintf(w, "generated %s (shown only now; store it where it is needed): %s\n", name, v)
		}
	}
}

func printList(w io.Writer, ts []*tenant.Tenant, asJSON bool) error {
	if asJSON {
		views := make([]tenant.View, len(ts))
		for i, t := range ts {
			views[i] = t.Redacted()
		}
		b, err := json.MarshalIndent(struct {
			Tenants []tenant.View `json:"tenants"`
		}{views}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENABLED\tCRM TOKEN\tJWT\tUPDATED")
	now := time.Now()
	for _, t := range ts {
		crm := ""
		if n := len(t.CRMTokens); n > 0 {
			crm = tenant.Fingerprint(t.CRMTokens[n-1].Value)
			if n > 1 {
				crm += fmt.Sprintf(" (+%d in grace)", n-1)
			}
		}
		jwt := []string{}
		if n := len(t.JWTSecretsAt(now)); n > 0 {
			jwt = append(jwt, fmt.Sprintf("%d secret(s)", n))
		}
		if n := len(t.JWTPublicKeys); n > 0 {
			jwt = append(jwt, fmt.Sprintf("%d key(s)", n))
		}
		if t.JWKSURL != "" {
			jwt = append(jwt, "jwks")
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\n", t.ID, t.Enabled, crm, strings.Join(jwt, ", "), t.Updated.Format(time.RFC3339))
	}
	return tw.Flush()
}
