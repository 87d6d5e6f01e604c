package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/sim"
	"github.com/callpop/callpop/webhook"
)

// pbxClientFlags adds the PBX API settings to fs.
func pbxClientFlags(fs *flagSet) (u, tok *string) {
	u, tok = new(string), new(string)
	fs.String(u, "pbx-url", "CALLPOP_PBX_URL", "", "the PBX API URL, …/sys/crm_api.wcgp (required)")
	fs.String(tok, "pbx-token", "CALLPOP_PBX_TOKEN", "", "the PBX API token (required)")
	return u, tok
}

func newPBXClient(u, tok string) (*pbx.Client, error) {
	if u == "" {
		return nil, errors.New("--pbx-url (CALLPOP_PBX_URL) is required")
	}
	// Checked here so that no error repeats the URL, which may hold a
	// credential.
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, errors.New("--pbx-url (CALLPOP_PBX_URL): not an http(s) URL with a host (the value is not shown: it may hold a credential)")
	}
	c, err := pbx.New(pbx.Config{URL: u, Token: tok})
	if err != nil {
		return nil, fmt.Errorf("--pbx-url, --pbx-token (CALLPOP_PBX_URL, CALLPOP_PBX_TOKEN): %w", err)
	}
	return c, nil
}

// runAccounts lists the PBX's employees and departments, to map CRM users to
// PBX logins (the `user` of webhooks and the `sub` of widget tokens).
func runAccounts(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("accounts")
	u, tok := pbxClientFlags(fs)
	if err := fs.parse(args, getenv, stdout); err != nil {
		return err
	}
	c, err := newPBXClient(*u, *tok)
	if err != nil {
		return err
	}
	accounts, err := c.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	groups, err := c.Groups(ctx, "")
	if err != nil {
		return fmt.Errorf("groups: %w", err)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LOGIN\tNAME\tEXT\tDIRECT NUMBER")
	for _, a := range accounts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.Name, a.RealName, a.Ext, a.Telnum)
	}
	fmt.Fprintln(w, "\nDEPARTMENT\tNAME\tEXT\t")
	for _, g := range groups {
		fmt.Fprintf(w, "%s\t%s\t%s\t\n", g.ID, g.RealName, g.Ext)
	}
	return w.Flush()
}

// runHistory is `callpop history import`: it backfills call records from the
// PBX's history CSV by posting them to a callpop node as the PBX's own
// history webhooks would arrive, so they go through the same validation,
// de-duplication (by callid) and forwarding.
func runHistory(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return errors.New("usage: callpop history import [--period today] [--start …] [--end …] [--type all|in|out|missed]")
	}
	var period, start, end, typ, node, crmToken string
	fs := newFlagSet("history import")
	u, tok := pbxClientFlags(fs)
	fs.String(&period, "period", "", "today", "today, yesterday, this_week, last_week, this_month, last_month; empty to use --start/--end")
	fs.String(&start, "start", "", "", "start, YYYYmmddTHHMMSSZ (with --period '')")
	fs.String(&end, "end", "", "", "end, YYYYmmddTHHMMSSZ (with --period '')")
	fs.String(&typ, "type", "", "all", "all, in, out, missed")
	fs.String(&node, "node", "", "http://127.0.0.1"+portOf(getenv("CALLPOP_ADDR")), "the callpop node to post the records to")
	fs.String(&crmToken, "crm-token", "CALLPOP_CRM_TOKEN", "", "the node's crm_token (required)")
	if err := fs.parse(args[1:], getenv, stdout); err != nil {
		return err
	}
	if crmToken == "" {
		return errors.New("--crm-token (CALLPOP_CRM_TOKEN) is required")
	}
	c, err := newPBXClient(*u, *tok)
	if err != nil {
		return err
	}
	q := pbx.HistoryQuery{Period: period, Type: typ}
	for _, t := range []struct {
		s   string
		dst *time.Time
	}{{start, &q.Start}, {end, &q.End}} {
		if t.s == "" {
			continue
		}
		if *t.dst, err = time.Parse(webhook.StartLayout, t.s); err != nil {
			return fmt.Errorf("--start/--end: want YYYYmmddTHHMMSSZ: %w", err)
		}
	}
	recs, err := c.History(ctx, q)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	imported, failed := 0, 0
	for _, r := range recs {
		form := historyForm(r)
		form.Set("crm_token", crmToken)
		resp, err := hc.PostForm(strings.TrimRight(node, "/")+"/webhook", form)
		if err != nil {
			return fmt.Errorf("post to --node: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed++
			fmt.Fprintf(stdout, "%s: refused with %d\n", r.UID, resp.StatusCode)
			continue
		}
		imported++
	}
	fmt.Fprintf(stdout, "%d records imported, %d refused\n", imported, failed)
	if failed > 0 {
		return fmt.Errorf("%d records refused", failed)
	}
	return nil
}

// historyForm turns a history CSV row into the PBX's history webhook. The
// CSV has no status: an answered call (talk > 0) is Success, a missed one
// Missed, and an outgoing call nobody answered Cancel.
func historyForm(r pbx.HistoryRecord) url.Values {
	dir, status := r.Type, "Success"
	switch {
	case r.Type == pbx.TypeMissed:
		dir, status = "in", "Missed"
	case r.Duration == 0 && r.Type == pbx.TypeIn:
		status = "Missed"
	case r.Duration == 0:
		status = "Cancel"
	}
	f := url.Values{
		"cmd": {"history"}, "type": {dir}, "status": {status}, "callid": {r.UID}, "phone": {r.Client},
		"user": {r.Account}, "start": {r.Start.UTC().Format(webhook.StartLayout)},
		"duration": {strconv.Itoa(r.Duration)},
	}
	if r.Record != "" {
		f.Set("link", r.Record)
	}
	if r.Via != "" && dir == "in" {
		f.Set("diversion", r.Via)
	}
	return f
}

func portOf(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" {
		return ":" + port
	}
	return ":8080"
}

// runPBXSim runs the simulated PBX alone, for people developing their CRM
// side: it serves the PBX API and, with --play, plays demo calls to --crm-url.
func runPBXSim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var addr, token, crmURL, crmToken string
	var play bool
	fs := newFlagSet("pbxsim")
	fs.String(&addr, "addr", "", ":8090", "listen address of the PBX API (served at /sys/crm_api.wcgp)")
	fs.String(&token, "token", "CALLPOP_PBX_TOKEN", "", "the PBX API token CRM requests must carry (required)")
	fs.String(&crmURL, "crm-url", "", "http://127.0.0.1:8080/webhook", "the CRM URL the PBX posts webhooks to")
	fs.String(&crmToken, "crm-token", "CALLPOP_CRM_TOKEN", "", "the crm_token sent with webhooks (required)")
	fs.Bool(&play, "play", "play demo calls to --crm-url until stopped")
	if err := fs.parse(args, getenv, stdout); err != nil {
		return err
	}
	if token == "" || crmToken == "" {
		return errors.New("--token (CALLPOP_PBX_TOKEN) and --crm-token (CALLPOP_CRM_TOKEN) are required")
	}
	log := newLogger(zapcore.InfoLevel, stderr, isTerminal(stderr))
	p := sim.New(sim.Config{Token: token, CRMURL: crmURL, CRMToken: crmToken,
		Accounts: demoManagers, Groups: demoGroups, Phones: demoPhones()}, log)
	defer p.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sys/crm_api.wcgp", p)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("simulated PBX listening", zap.String("api", "http://"+loopbackAddr(ln.Addr())+"/sys/crm_api.wcgp"))
	if play {
		go func() { _ = p.Demo(ctx) }()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
