package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Distinctive secrets: none may ever appear in what callpop prints.
const (
	leakCRMToken  = "crm-secret-Zq7Kx2Lw9Pd4"
	leakJWTSecret = "jwt-secret-Hb3Nf8Rt6Ys1Hb3Nf8Rt6Ys1Hb3Nf8Rt6Ys1"
	leakPBXToken  = "pbx-secret-Vm5Gc0Uj2Ea7"
	leakRedisPass = "hunter2pass"
)

var leakEnv = map[string]string{
	"CALLPOP_CRM_TOKEN":  leakCRMToken,
	"CALLPOP_JWT_SECRET": leakJWTSecret,
	"CALLPOP_PBX_TOKEN":  leakPBXToken,
	"CALLPOP_REDIS_URL":  "redis://:" + leakRedisPass + "@127.0.0.1:1/0",
}

func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{leakCRMToken, leakJWTSecret, leakPBXToken, leakRedisPass} {
		if strings.Contains(out, s) {
			t.Errorf("%s prints a secret (%s):\n%s", what, s, out)
		}
	}
}

// mainEnv, when set, makes the test binary run callpop's main with its own
// arguments: the only way to see the real exit code and everything the
// process writes, as a pod log would.
const mainEnv = "CALLPOP_TEST_RUN_MAIN"

// runMain runs callpop's main in a child process with args and env (over
// nothing else of ours) and returns its exit code and combined output.
func runMain(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = []string{mainEnv + "=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("callpop %v did not end: %s", args, out.String())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// TestHelpExitsZeroAndPrintsNoSecret asks every command for help with the
// secrets in the environment: exit 0, the flags listed, no secret shown.
func TestHelpExitsZeroAndPrintsNoSecret(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--help"}, {"serve", "-h"}, {"demo", "--help"}, {"token", "--help"},
		{"accounts", "--help"}, {"history", "import", "--help"}, {"pbxsim", "--help"}, {"healthcheck", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			code, out := runMain(t, leakEnv, args...)
			if code != 0 {
				t.Errorf("exit %d, want 0:\n%s", code, out)
			}
			if !strings.Contains(out, "--") {
				t.Errorf("help lists no flags:\n%s", out)
			}
			assertNoSecret(t, "help", out)
		})
	}
}

// TestErrorsAreOneLineAndPrintNoSecret: a mistyped flag, a bad value and a
// malformed URL carrying a credential each give exit 2 and one line naming
// the setting, and no secret.
func TestErrorsAreOneLineAndPrintNoSecret(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string // in the line
	}{
		{"UnknownFlag", []string{"serve", "--bogus-flag"}, "bogus-flag"},
		{"UnknownFlagInDemo", []string{"demo", "--bogus-flag"}, "bogus-flag"},
		{"MistypedSecretFlag", []string{"serve", "--crm-tokn=" + leakCRMToken}, "--crm-tokn"},
		{"MistypedSecretFlagInHistory", []string{"history", "import", "--pbx-tokn", leakPBXToken}, "--pbx-tokn"},
		{"NaNRate", []string{"serve", "--webhook-rate", "NaN"}, "--webhook-rate (CALLPOP_WEBHOOK_RATE)"},
		{"PBXURLWithToken", []string{"serve", "--pbx-url", "ftp://pbx.example.com/sys/crm_api.wcgp?token=" + leakPBXToken}, "--pbx-url (CALLPOP_PBX_URL)"},
		{"PBXURLUnparsable", []string{"serve", "--pbx-url", "https://admin:" + leakPBXToken + "@pbx.example.com:port/"}, "--pbx-url (CALLPOP_PBX_URL)"},
		{"ForwardURLWithPassword", []string{"serve", "--history-forward-url", "https://crm:" + leakPBXToken + "@/hook"}, "--history-forward-url"},
		{"RedisURLBadPort", []string{"serve", "--redis-url", "redis://:" + leakRedisPass + "@127.0.0.1:port/0"}, "--redis-url (CALLPOP_REDIS_URL)"},
		{"RedisSentinelURLNoMaster", []string{"serve", "--redis-url", "redis-sentinel://:" + leakRedisPass + "@127.0.0.1:26379,127.0.0.1:26380"}, "--redis-url (CALLPOP_REDIS_URL)"},
		{"RedisClusterURLBadQuery", []string{"serve", "--redis-url", "redis-cluster://:" + leakRedisPass + "@127.0.0.1:7000?sentinel_password=" + leakRedisPass}, "--redis-url (CALLPOP_REDIS_URL)"},
		{"RedisURLBadScheme", []string{"serve", "--redis-url", "http://:" + leakRedisPass + "@127.0.0.1/0"}, "--redis-url (CALLPOP_REDIS_URL)"},
		{"NegativeTTL", []string{"token", "--user", "andy", "--ttl", "-5h"}, "--ttl"},
		{"UnknownCommand", []string{"sever"}, "sever"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A free port: old code that accepted the setting starts no
			// server on 8080.
			args := append(c.args, "--addr", "127.0.0.1:0")
			if c.args[0] != "serve" && c.args[0] != "demo" {
				args = c.args
			}
			code, out := runMain(t, leakEnv, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != 1 {
				t.Errorf("%d lines, want one:\n%s", len(lines), out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("error does not name %s: %s", c.want, out)
			}
			if strings.Contains(out, "redis: redis:") {
				t.Errorf("prefix doubled: %s", out)
			}
			assertNoSecret(t, "the error", out)
		})
	}
}

// TestHelpShowsTheTypeOfEachFlag: numbers show as numbers, not strings, and
// help goes to stdout.
func TestHelpShowsTheTypeOfEachFlag(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--help"}, envOf(nil), &stdout, &stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, want := range []string{"--webhook-rate float", "--connect-rate float", "--max-sessions-per-user int",
		"--contact-budget duration", "--shutdown-timeout duration", "--crm-token string", "CALLPOP_WEBHOOK_RATE"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestDemoHelpDoesNotCallGeneratedSecretsRequired: the demo makes up its
// crm_token and JWT secret when none is given.
func TestDemoHelpDoesNotCallGeneratedSecretsRequired(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"demo", "--help"}, envOf(nil), &stdout, &stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	help := stdout.String()
	if !strings.Contains(help, "--crm-token") || strings.Contains(help, "required") {
		t.Fatalf("demo help:\n%s", help)
	}
	if !strings.Contains(help, `"127.0.0.1:8080"`) {
		t.Fatalf("demo help does not show its loopback default:\n%s", help)
	}
}

// TestNumbersMustBeFinite: NaN and Inf are refused for every numeric
// setting, from a flag or from the environment, with one line naming both.
func TestNumbersMustBeFinite(t *testing.T) {
	t.Parallel()
	base := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}
	for _, name := range []string{"webhook-rate", "connect-rate", "max-sessions-per-user"} {
		env := "CALLPOP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "1e400"} {
			want := "--" + name + " (" + env + "): "
			_, err := parseConfig("serve", []string{"--" + name, v}, envOf(base), true)
			if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("--%s %s: %v", name, v, err)
			}
			withEnv := map[string]string{env: v}
			for k, v := range base {
				withEnv[k] = v
			}
			_, err = parseConfig("serve", nil, envOf(withEnv), true)
			if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s=%s: %v", env, v, err)
			}
		}
	}
	_, err := parseConfig("serve", []string{"--webhook-rate", "NaN"}, envOf(base), true)
	if want := `--webhook-rate (CALLPOP_WEBHOOK_RATE): "NaN" is not a non-negative number`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestFlagOverridesABadEnvironmentValue: the flag given wins, so the
// environment's value is not even read.
func TestFlagOverridesABadEnvironmentValue(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret, "CALLPOP_WEBHOOK_RATE": "lots"}
	cfg, err := parseConfig("serve", []string{"--webhook-rate", "5"}, envOf(env), true)
	if err != nil || cfg.webhookRate != 5 {
		t.Fatalf("%+v %v", cfg, err)
	}
}

func TestServeRefusesAShortCRMToken(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALLPOP_JWT_SECRET": testSecret}
	_, err := parseConfig("serve", []string{"--crm-token", "fifteen-chars-x"}, envOf(env), true)
	if err == nil || !strings.HasPrefix(err.Error(), "--crm-token (CALLPOP_CRM_TOKEN)") || strings.Contains(err.Error(), "\n") ||
		strings.Contains(err.Error(), "fifteen") {
		t.Fatalf("a 15-character crm_token: %v", err)
	}
	if _, err := parseConfig("serve", []string{"--crm-token", "sixteen-chars-xx"}, envOf(env), true); err != nil {
		t.Fatalf("a 16-character crm_token: %v", err)
	}
}

func TestTokenRefusesANonPositiveTTL(t *testing.T) {
	t.Parallel()
	for _, ttl := range []string{"-5h", "0", "0s"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"token", "--user", "andy", "--ttl", ttl},
			envOf(map[string]string{"CALLPOP_JWT_SECRET": testSecret}), &out, &out)
		if err == nil || !strings.Contains(err.Error(), "--ttl") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--ttl %s: %v", ttl, err)
		}
		if out.Len() > 0 {
			t.Errorf("--ttl %s printed %q", ttl, out.String())
		}
	}
}

// TestDemoListensOnLoopbackByDefault: /demo/token hands out tokens, so the
// demo stays on this machine unless told otherwise; serve keeps :8080.
func TestDemoListensOnLoopbackByDefault(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cmd  string
		env  map[string]string
		args []string
		want string
	}{
		{"demo", nil, nil, "127.0.0.1:8080"},
		{"demo", map[string]string{"CALLPOP_ADDR": ":9000"}, nil, ":9000"},
		{"demo", nil, []string{"--addr", "0.0.0.0:9001"}, "0.0.0.0:9001"},
		{"serve", map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}, nil, ":8080"},
	} {
		cfg, err := parseConfig(c.cmd, c.args, envOf(c.env), c.cmd == "serve")
		if err != nil || cfg.Addr != c.want {
			t.Errorf("%s %v %v: addr %q (%v), want %q", c.cmd, c.env, c.args, cfg.Addr, err, c.want)
		}
	}
}

// jsonLines fails unless every line of out is a JSON object, and returns them.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	return lines
}

// waitFor polls s until it contains want (the command runs in another
// goroutine and reports nothing else).
func waitFor(t *testing.T, s *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %q", want, s.String())
		}
	}
}

// TestDemoBeyondLoopbackWarnsInJSON: told to listen on every interface, the
// demo says that its tokens are now up for grabs; with stderr not a terminal
// its log is JSON, like serve's.
func TestDemoBeyondLoopbackWarnsInJSON(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--addr", ":0"}, envOf(nil), &stdout, &stderr) }()
	waitFor(t, &stdout, "open http")
	waitFor(t, &stderr, "listening")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, l := range jsonLines(t, stderr.String()) {
		warned = warned || l["level"] == "warn" && strings.Contains(l["msg"].(string), "/demo/token")
	}
	if !warned {
		t.Fatalf("no warning about /demo/token:\n%s", stderr.String())
	}
}

// TestDemoOnLoopbackDoesNotWarn: the default, quiet case.
func TestDemoOnLoopbackDoesNotWarn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0"}, envOf(nil), &stdout, &stderr) }()
	waitFor(t, &stderr, "listening")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, l := range jsonLines(t, stderr.String()) {
		if l["level"] == "warn" {
			t.Fatalf("warned on loopback: %v", l)
		}
	}
}

// TestPBXSimLogsJSONWhenNotATerminal: like serve, pbxsim writes JSON lines
// without colour codes unless stderr is a terminal.
func TestPBXSimLogsJSONWhenNotATerminal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"pbxsim", "--addr", "127.0.0.1:0", "--token", "t", "--crm-token", "c"}, envOf(nil), &stderr, &stderr)
	}()
	waitFor(t, &stderr, "listening")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "\x1b[") {
		t.Fatalf("colour codes in a non-terminal log: %q", stderr.String())
	}
	jsonLines(t, stderr.String())
}
