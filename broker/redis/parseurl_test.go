package redis_test

import (
	"strings"
	"testing"

	"github.com/callpop/callpop/broker/redis"
)

// TestParseURLErrorsRepeatNoPassword: a URL's password never shows in the
// error, and the "redis: " prefix appears once.
func TestParseURLErrorsRepeatNoPassword(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"redis://:hunter2pass@127.0.0.1:port/0", // does not parse
		"redis://:hunter2pass@127.0.0.1:6379/%zz",
		"http://:hunter2pass@127.0.0.1:6379/0", // wrong scheme
		"redis://:hunter2pass@127.0.0.1:6379/db",
	} {
		_, err := redis.ParseURL(u)
		if err == nil {
			t.Fatalf("%s parsed", u)
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2pass") || !strings.HasPrefix(msg, "redis: ") ||
			strings.Contains(msg, "redis: redis:") {
			t.Errorf("%s: %q", u, msg)
		}
	}
	if opt, err := redis.ParseURL("redis://:hunter2pass@127.0.0.1:6379/2"); err != nil || opt.Password != "hunter2pass" || opt.DB != 2 {
		t.Fatalf("a good URL: %+v %v", opt, err)
	}
}
