// Command callpop is the call-popup push server: `callpop serve` runs a node,
// `callpop token` mints a widget session token, `callpop demo` runs a node, a
// simulated PBX and a demo CRM page in one process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/internal/gctune"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr in one line and returns the process's exit
// code: 0 after success or help (-h), 1 for a health check that failed (what
// container runtimes read as unhealthy), 2 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "callpop:", err)
	if errors.Is(err, errUnhealthy) {
		return 1
	}
	return 2
}

const usage = `usage: callpop <command> [flags]

commands:
  serve        run a callpop node
  demo         run a node, a simulated PBX and a demo CRM page
  token        print a widget session token: callpop token --user andy [--ttl 12h]
  accounts     list the PBX's employees and departments (to map CRM users to PBX logins)
  history      history import --period today: backfill call records from the PBX
  pbxsim       run the simulated PBX alone (--play to play demo calls to --crm-url)
  tenant       manage the tenant registry: add, list, show, update, enable, disable, rotate-token, delete
  healthcheck  exit 0 when this node's /healthz (--ready: /readyz) answers 200, else 1
  version      print the version, Go version and VCS revision (also --version)

Run "callpop <command> -h" for the command's flags.
`

// run is main without the process: testable with its own args, environment
// and outputs.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return runToken(args[1:], getenv, stdout)
	case "accounts":
		return runAccounts(ctx, args[1:], getenv, stdout)
	case "history":
		return runHistory(ctx, args[1:], getenv, stdout)
	case "pbxsim":
		return runPBXSim(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-version":
		printVersion(stdout)
		return nil
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stdout)
	case "tenant", "tenants":
		return runTenant(ctx, args[1:], getenv, os.Stdin, stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (callpop help lists the commands)", args[0])
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfigHelp("serve", args, getenv, true, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg.logLevel, stderr, false)
	defer func() { _ = log.Sync() }()
	s, err := newServer(cfg, log, serverOptions{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.close()
		return fmt.Errorf("--addr (CALLPOP_ADDR): %w", err)
	}
	if cfg.AdminAddr != "" {
		adminAPI, err := s.adminHandler()
		if err != nil {
			ln.Close()
			s.close()
			return err
		}
		stop, err := serveAdmin(cfg.AdminAddr, log, adminAPI)
		if err != nil {
			ln.Close()
			s.close()
			return err
		}
		defer stop()
	}
	if getenv("GOGC") == "" { // an operator's GOGC wins
		tctx, cancel := context.WithCancel(ctx)
		tuned := make(chan struct{})
		go func() { gctune.Run(tctx, log, time.Second); close(tuned) }()
		defer func() { cancel(); <-tuned }()
	}
	return s.serve(ctx, ln)
}

// serveAdmin runs the admin listener: Go's profiler, for "how we profiled"
// (docs/benchmarks.md), and the tenant admin API under /admin/ when api is
// not nil. Off by default; it must not face the network.
func serveAdmin(addr string, log *zap.Logger, api http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr (CALLPOP_ADMIN_ADDR): %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if api != nil {
		mux.Handle("/admin/", api)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("admin listener (pprof)", zap.String("addr", ln.Addr().String()), zap.Bool("admin_api", api != nil))
	return func() { _ = srv.Close() }, nil
}

func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	var user, secret string
	var ttl time.Duration
	fs := newFlagSet("token")
	fs.String(&user, "user", "", "", "PBX user login the token is for (required)")
	// A zero or negative ttl is refused as it is set: it would mint a
	// token that is expired already.
	fs.Duration(&ttl, "ttl", "", 12*time.Hour, "how long the token is valid")
	fs.String(&secret, "jwt-secret", "CALLPOP_JWT_SECRET", "", fmt.Sprintf("HS256 secret, ≥ %d bytes (required)", auth.MinSecretLen))
	if err := fs.parse(args, getenv, stdout); err != nil {
		return err
	}
	if user == "" {
		return errors.New("--user is required")
	}
	j, err := auth.NewJWT(secret)
	if err != nil {
		return fmt.Errorf("--jwt-secret (CALLPOP_JWT_SECRET): %w", err)
	}
	tok, err := j.Mint(user, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// newLogger returns the root logger: JSON lines, or, with console, coloured
// text for a person at a terminal.
func newLogger(level zapcore.Level, w io.Writer, console bool) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if console {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level))
}

// isTerminal reports whether w is a terminal (a character device), where a
// person reads the log; anything else gets JSON lines without colour codes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
