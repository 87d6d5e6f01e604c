//go:build linux

// Command callpop-bench is callpop's load tool: it opens N WebSocket sessions
// over U users on one or several nodes, waits for every hello, posts webhooks
// at a set rate, and measures at the client the time from a webhook's send to
// its frame's arrival, frames delivered against expected, duplicates, order,
// the achieved webhook rate, HTTP errors, and the servers' memory per
// session. Modes: direct calls, group calls (G managers ring, one accepts),
// and a reconnect storm. It targets loopback only, and every run is bounded.
//
//	callpop-bench --sessions 10000 --users 2000 --rate 1000 --duration 30s \
//	    --crm-token "$CALLPOP_CRM_TOKEN" --jwt-secret "$CALLPOP_JWT_SECRET" --server-pid "$PID"
//
// With --tenants N the users are spread over N tenants with the same logins
// (webhooks to /webhook/<tenant>, tokens with its tid), and a frame crossing
// tenants counts as misrouted; --write-tenants FILE writes their registry for
// callpop serve --tenants-file.
//
// With --server centrifugo it measures a Centrifugo server the same way, for a
// side-by-side (direct mode): each session connects and subscribes to its
// user's personal channel, and every event is published through the HTTP API.
//
// See docs/benchmarks.md for the measured figures and how to reproduce them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	// The tool's own collections pause its readers and would be reported as
	// the node's latency; it trades memory for fewer of them unless told.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "callpop-bench:", err)
		}
		os.Exit(1)
	}
}

// Modes.
const (
	modeDirect = "direct"
	modeGroup  = "group"
	modeStorm  = "storm"
)

type options struct {
	targets    []*url.URL
	sessions   int
	users      int
	rate       float64
	duration   time.Duration
	mode       string
	group      int
	ring       time.Duration
	crmToken   string
	jwtSecret  string
	serverPIDs []int
	watchPIDs  []namedPID // other processes whose CPU under load is reported one by one
	metricsURL []string
	sourceIPs  int
	jsonOnly   bool
	timeout    time.Duration
	dialConc   int
	workers    int
	ack        bool
	stormRate  float64
	idle       time.Duration
	drain      time.Duration
	settle     time.Duration
	readLimit  int
	helloWait  time.Duration
	userPrefix string
	server     string // serverCallpop or serverCentrifugo
	apiKey     string // Centrifugo's HTTP API key (centrifugo mode)

	// tenants spreads the users over that many tenants (0: the default
	// tenant); writeTenants is where to write their registry file.
	tenants      int
	writeTenants string
	tenantRate   float64
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("callpop-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targets := fs.String("target", "http://127.0.0.1:8080", "comma list of node base URLs (loopback only); sessions and webhooks are spread round-robin over them")
	fs.IntVar(&o.sessions, "sessions", 1000, "WebSocket sessions to open")
	fs.IntVar(&o.users, "users", 200, "users u0..u{U-1}; sessions are spread evenly over them")
	fs.Float64Var(&o.rate, "rate", 100, "webhooks per second (every webhook counts, INCOMING and ACCEPTED alike)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to post webhooks (direct, group)")
	fs.StringVar(&o.mode, "mode", modeDirect, "direct | group | storm")
	fs.IntVar(&o.group, "group", 20, "managers per group call (group mode)")
	fs.DurationVar(&o.ring, "ring", 0, "group mode: how long a call rings after its last INCOMING was answered before one manager ACCEPTs")
	// Secrets take no flag default from the environment: a default is printed
	// by -h and by every flag error.
	fs.StringVar(&o.crmToken, "crm-token", "", "the servers' crm_token (env CALLPOP_CRM_TOKEN)")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "the servers' HS256 secret, to mint session tokens (env CALLPOP_JWT_SECRET)")
	pids := fs.String("server-pid", "", "comma list of server pids: RSS and CPU from /proc/<pid>")
	watch := fs.String("watch-pid", "", "comma list of name=pid: each process's CPU under load, reported apart (e.g. the Redis shards)")
	murl := fs.String("metrics-url", "", "comma list of /metrics URLs: RSS and CPU when no --server-pid")
	fs.IntVar(&o.sourceIPs, "source-ips", 50, "spread sessions over source addresses 127.0.0.1..127.0.0.N (0: let the kernel choose)")
	fs.BoolVar(&o.jsonOnly, "json", false, "print only the JSON line")
	fs.DurationVar(&o.timeout, "timeout", 0, "hard cap on the whole run (default duration+60s)")
	fs.IntVar(&o.dialConc, "dial-concurrency", 200, "sessions being opened at once")
	fs.IntVar(&o.workers, "workers", 128, "concurrent webhook POSTs (keep-alive connections)")
	fs.BoolVar(&o.ack, "ack", false, "send {\"type\":\"ack\"} for every call frame, as the widget does")
	fs.Float64Var(&o.stormRate, "storm-rate", 100, "storm mode: webhooks per second posted while the sessions are down and coming back")
	fs.DurationVar(&o.idle, "idle", 0, "after every hello, hold the sessions idle this long and report the servers' CPU")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "longest wait for outstanding frames after the last webhook")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "pause after every hello before reading the servers' RSS")
	fs.IntVar(&o.readLimit, "read-limit", 256<<10, "largest message a session accepts (hello lists active calls)")
	fs.StringVar(&o.userPrefix, "user-prefix", "u", "user names are <prefix>0..<prefix>{U-1}; give each of several load processes its own")
	fs.DurationVar(&o.helloWait, "hello-timeout", 120*time.Second, "longest wait for every session's hello")
	fs.StringVar(&o.server, "server", serverCallpop, "callpop | centrifugo: the server under test (centrifugo: direct mode only; sessions speak Centrifugo's JSON client protocol, events go through its HTTP API)")
	fs.StringVar(&o.apiKey, "api-key", "", "centrifugo mode: Centrifugo's HTTP API key (env CALLPOP_BENCH_CENTRIFUGO_API_KEY)")
	fs.IntVar(&o.tenants, "tenants", 0, "spread the users over N tenants (users/N each, the same logins in every tenant): webhooks to /webhook/<tenant> with its crm_token, tokens with its tid; 0: the default tenant")
	fs.StringVar(&o.writeTenants, "write-tenants", "", "write the --tenants N tenants' registry to this file (for callpop serve --tenants-file) and exit; their secrets derive from --crm-token and --jwt-secret")
	fs.Float64Var(&o.tenantRate, "tenant-webhook-rate", 1e6, "--write-tenants: each tenant's limits.webhook_rate (high: the run measures fan-out, not the tenant limit)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.crmToken == "" {
		o.crmToken = os.Getenv("CALLPOP_CRM_TOKEN")
	}
	if o.jwtSecret == "" {
		o.jwtSecret = os.Getenv("CALLPOP_JWT_SECRET")
	}
	if o.apiKey == "" {
		o.apiKey = os.Getenv("CALLPOP_BENCH_CENTRIFUGO_API_KEY")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, t := range splitList(*targets) {
		u, err := url.Parse(t)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("--target %q: want http://127.x.x.x:port", t)
		}
		if err := mustLoopback(u); err != nil {
			return nil, fmt.Errorf("--target %q: %w", t, err)
		}
		o.targets = append(o.targets, u)
	}
	if len(o.targets) == 0 {
		return nil, errors.New("--target: at least one node")
	}
	for _, p := range splitList(*pids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("--server-pid %q: not a pid", p)
		}
		o.serverPIDs = append(o.serverPIDs, pid)
	}
	for _, w := range splitList(*watch) {
		name, p, ok := strings.Cut(w, "=")
		pid, err := strconv.Atoi(p)
		if !ok || name == "" || err != nil || pid <= 0 {
			return nil, fmt.Errorf("--watch-pid %q: want name=pid", w)
		}
		o.watchPIDs = append(o.watchPIDs, namedPID{name, pid})
	}
	for _, m := range splitList(*murl) {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--metrics-url %q: not a URL", m)
		}
		if err := mustLoopback(u); err != nil {
			return nil, fmt.Errorf("--metrics-url %q: %w", m, err)
		}
		o.metricsURL = append(o.metricsURL, m)
	}
	switch {
	case o.mode != modeDirect && o.mode != modeGroup && o.mode != modeStorm:
		return nil, fmt.Errorf("--mode %q: direct, group or storm", o.mode)
	case o.sessions <= 0 || o.users <= 0:
		return nil, errors.New("--sessions and --users must be positive")
	case o.users > o.sessions:
		return nil, errors.New("--users must not exceed --sessions (every user needs a session)")
	case o.rate <= 0 || o.duration < 0:
		return nil, errors.New("--rate must be positive and --duration not negative")
	case o.mode == modeGroup && (o.group < 2 || o.group > o.users):
		return nil, fmt.Errorf("--group %d: between 2 and --users", o.group)
	case o.sourceIPs < 0 || o.sourceIPs > 254:
		return nil, errors.New("--source-ips: 0..254")
	case o.dialConc <= 0 || o.workers <= 0:
		return nil, errors.New("--dial-concurrency and --workers must be positive")
	case o.stormRate <= 0:
		return nil, errors.New("--storm-rate must be positive")
	case o.userPrefix == "" || strings.ContainsAny(o.userPrefix, "@&=?# "):
		return nil, errors.New("--user-prefix: a plain login prefix")
	case o.server != serverCallpop && o.server != serverCentrifugo:
		return nil, fmt.Errorf("--server %q: callpop or centrifugo", o.server)
	case o.tenants < 0 || o.tenants > 0 && o.users%o.tenants != 0:
		return nil, errors.New("--tenants N: --users a multiple of N (every tenant gets as many users)")
	case o.tenants > 0 && o.server != serverCallpop:
		return nil, errors.New("--tenants: callpop only")
	case o.tenants > 0 && o.mode == modeGroup && o.group > o.users/o.tenants:
		return nil, fmt.Errorf("--group %d: a group call rings users of one tenant; at most --users/--tenants = %d", o.group, o.users/o.tenants)
	case o.writeTenants != "" && o.tenants == 0:
		return nil, errors.New("--write-tenants: with --tenants N")
	case o.server == serverCallpop && o.crmToken == "":
		return nil, errors.New("--crm-token (or CALLPOP_CRM_TOKEN) is required")
	case o.jwtSecret == "":
		return nil, errors.New("--jwt-secret (or CALLPOP_JWT_SECRET) is required")
	}
	if o.server == serverCentrifugo {
		if err := o.checkCentrifugo(); err != nil {
			return nil, err
		}
	}
	if o.timeout <= 0 {
		o.timeout = o.duration + o.idle + 60*time.Second
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// mustLoopback refuses any host outside 127.0.0.0/8 (and "localhost"): the
// tool is for this machine only.
func mustLoopback(u *url.URL) error {
	h := u.Hostname()
	if h == "localhost" {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
		h = "127.0.0.1"
	}
	ip := net.ParseIP(h)
	if ip == nil || ip.To4() == nil || ip.To4()[0] != 127 {
		return errors.New("loopback (127.0.0.0/8) only")
	}
	if u.Port() == "" {
		return errors.New("a port is required")
	}
	return nil
}

// run is main without the process: the test calls it with its own args.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseOptions(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.writeTenants != "" {
		return writeTenantsFile(o)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	logf := func(format string, a ...any) {
		if !o.jsonOnly {
			fmt.Fprintf(os.Stderr, "callpop-bench: "+format+"\n", a...)
		}
	}
	r := newRunner(o, logf)
	defer r.closeAll()
	rep, runErr := r.run(ctx)
	if rep != nil {
		if !o.jsonOnly {
			rep.writeTable(stdout)
		}
		if err := rep.writeJSON(stdout); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return runErr
	}
	if rep.Lost > 0 || rep.Duplicated > 0 {
		return fmt.Errorf("%d frames lost, %d duplicated", rep.Lost, rep.Duplicated)
	}
	return nil
}
