package main

import (
	"context"
	"errors"
	"flag"
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

// pbxClientFlags adds the PBX API settings to fs, over the environment.
func pbxClientFlags(fs *flag.FlagSet, getenv func(string) string) (u, tok *string) {
	u = fs.String("pbx-url", getenv("CALLPOP_PBX_URL"), "the PBX API URL, …/sys/crm_api.wcgp (env CALLPOP_PBX_URL)")
	tok = fs.String("pbx-token", getenv("CALLPOP_PBX_TOKEN"), "the PBX API token (env CALLPOP_PBX_TOKEN)")
	return u, tok
}

func newPBXClient(u, tok string) (*pbx.Client, error) {
	if u == "" {
		return nil, errors.New("--pbx-url (CALLPOP_PBX_URL) is required")
	}
	c, err := pbx.New(pbx.Config{URL: u, Token: tok})
	if err != nil {
		return nil, fmt.Errorf("--pbx-url, --pbx-token: %w", err)
	}
	return c, nil
}

// runAccounts lists the PBX's employees and departments, to map CRM users to
// PBX logins (the `user` of webhooks and the `sub` of widget tokens).
func runAccounts(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("accounts", flag.ContinueOnError)
	u, tok := pbxClientFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
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
	fs := flag.NewFlagSet("history import", flag.ContinueOnError)
	u, tok := pbxClientFlags(fs, getenv)
	period := fs.String("period", "today", "today, yesterday, this_week, last_week, this_month, last_month; empty to use --start/--end")
	start := fs.String("start", "", "start, YYYYmmddTHHMMSSZ (with --period '')")
	end := fs.String("end", "", "end, YYYYmmddTHHMMSSZ (with --period '')")
	typ := fs.String("type", "all", "all, in, out, missed")
	node := fs.String("node", "http://127.0.0.1"+portOf(getenv("CALLPOP_ADDR")), "the callpop node to post the records to")
	crmToken := fs.String("crm-token", getenv("CALLPOP_CRM_TOKEN"), "the node's crm_token (env CALLPOP_CRM_TOKEN)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *crmToken == "" {
		return errors.New("--crm-token (CALLPOP_CRM_TOKEN) is required")
	}
	c, err := newPBXClient(*u, *tok)
	if err != nil {
		return err
	}
	q := pbx.HistoryQuery{Period: *period, Type: *typ}
	for _, t := range []struct {
		s   string
		dst *time.Time
	}{{*start, &q.Start}, {*end, &q.End}} {
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
		form.Set("crm_token", *crmToken)
		resp, err := hc.PostForm(strings.TrimRight(*node, "/")+"/webhook", form)
		if err != nil {
			return fmt.Errorf("post to %s: %w", *node, err)
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
func runPBXSim(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pbxsim", flag.ContinueOnError)
	addr := fs.String("addr", ":8090", "listen address of the PBX API (served at /sys/crm_api.wcgp)")
	token := fs.String("token", getenv("CALLPOP_PBX_TOKEN"), "the PBX API token CRM requests must carry (env CALLPOP_PBX_TOKEN)")
	crmURL := fs.String("crm-url", "http://127.0.0.1:8080/webhook", "the CRM URL the PBX posts webhooks to")
	crmToken := fs.String("crm-token", getenv("CALLPOP_CRM_TOKEN"), "the crm_token sent with webhooks (env CALLPOP_CRM_TOKEN)")
	play := fs.Bool("play", false, "play demo calls to --crm-url until stopped")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" || *crmToken == "" {
		return errors.New("--token (CALLPOP_PBX_TOKEN) and --crm-token (CALLPOP_CRM_TOKEN) are required")
	}
	log := newLogger(zapcore.InfoLevel, stderr, true)
	p := sim.New(sim.Config{Token: *token, CRMURL: *crmURL, CRMToken: *crmToken,
		Accounts: demoManagers, Groups: demoGroups, Phones: demoPhones()}, log)
	defer p.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sys/crm_api.wcgp", p)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("simulated PBX listening", zap.String("api", "http://"+loopbackAddr(ln.Addr())+"/sys/crm_api.wcgp"))
	if *play {
		go func() { _ = p.Demo(ctx) }()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
