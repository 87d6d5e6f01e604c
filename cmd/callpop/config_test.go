package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/auth"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigNamesTheSettingThatIsWrong(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error
	}{
		{"MissingCRMToken", map[string]string{"CALLPOP_JWT_SECRET": testSecret}, nil, "CALLPOP_CRM_TOKEN"},
		{"MissingJWTSecret", map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken}, nil, "CALLPOP_JWT_SECRET"},
		{"ShortJWTSecret", map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": "short"}, nil, "CALLPOP_JWT_SECRET"},
		{"BadRedisURL", ok, []string{"--redis-url", "http://nope"}, "--redis-url"},
		{"BadOrigin", ok, []string{"--allowed-origins", "crm.example.com"}, "--allowed-origins"},
		{"BadPBXURL", ok, []string{"--pbx-url", "ftp://pbx"}, "--pbx-url"},
		{"ContactURLWithoutPhone", ok, []string{"--contact-url", "https://crm/api"}, "--contact-url"},
		{"TLSCertWithoutKey", ok, []string{"--tls-cert", "c.pem"}, "--tls-key"},
		{"BadLogLevel", ok, []string{"--log-level", "loud"}, "--log-level"},
		{"BadDurationInEnv", map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret, "CALLPOP_CONTACT_BUDGET": "soon"}, nil, "CALLPOP_CONTACT_BUDGET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig("serve", c.args, envOf(c.env), true)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func TestConfigFlagOverridesEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret, "CALLPOP_ADDR": ":9000",
		"CALLPOP_CONTACT_BUDGET": "300ms", "CALLPOP_ALLOWED_ORIGINS": "https://crm.example.com"}
	cfg, err := parseConfig("serve", []string{"--addr", ":9100"}, envOf(env), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9100" || cfg.ContactBudget != 300*time.Millisecond || !cfg.origins.Allow("https://crm.example.com") {
		t.Fatalf("config %+v", cfg)
	}
	cfg, _ = parseConfig("serve", nil, envOf(map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}), true)
	if cfg.Addr != ":8080" || cfg.LogLevel != "info" || cfg.RedisURL != "" {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestTokenCommandMintsAVerifiableToken(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"token", "--user", "andy@acme", "--ttl", "1h"},
		envOf(map[string]string{"CALLPOP_JWT_SECRET": testSecret}), &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := auth.NewJWT(testSecret)
	id, err := j.Verify(strings.TrimSpace(out.String()))
	if err != nil || id.Key != "andy" || time.Until(id.Expires) > time.Hour {
		t.Fatalf("token %q: %+v %v", out.String(), id, err)
	}
}

func TestServeRefusesToStartWithoutItsSecrets(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve"}, envOf(nil), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "CALLPOP_CRM_TOKEN") {
		t.Fatalf("serve without settings: %v", err)
	}
}

func TestGuardSettingsAreChecked(t *testing.T) {
	t.Parallel()
	base := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}
	for flagName, v := range map[string]string{"--trusted-proxies": "10.0.0.0/99", "--webhook-allow": "pbx.example.com",
		"--webhook-rate": "-1", "--connect-rate": "fast", "--max-sessions-per-user": "0"} {
		if _, err := parseConfig("serve", []string{flagName, v}, envOf(base), true); err == nil || !strings.Contains(err.Error(), flagName) {
			t.Errorf("%s %s: %v", flagName, v, err)
		}
	}
}
