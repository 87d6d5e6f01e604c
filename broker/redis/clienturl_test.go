package redis_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/broker/redis"
)

// TestParseClientURLSingleIsGoRedis: a redis:// or rediss:// URL gives the
// very options go-redis's ParseURL gives, so upgrading changes nothing.
func TestParseClientURLSingleIsGoRedis(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://localhost",
		"redis://:hunter2pass@10.0.0.1:6380/3",
		"redis://callpop:hunter2pass@redis.internal/2?dial_timeout=3&read_timeout=6s&write_timeout=1s&pool_size=40" +
			"&min_idle_conns=2&max_retries=5&client_name=cp&conn_max_idle_time=1m&conn_max_lifetime=1h&protocol=3",
		"rediss://user:p%40ss@redis.example.com:6380/1?skip_verify=true",
		"redis://[::1]:6379/0",
	} {
		want, err := goredis.ParseURL(u)
		if err != nil {
			t.Fatalf("%s: go-redis: %v", u, err)
		}
		got, err := redis.ParseClientURL(u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if got.MasterName != "" || got.IsClusterMode || len(got.Addrs) != 1 {
			t.Fatalf("%s: not a single server: %+v", u, got)
		}
		want.Network = "" // tcp is the default; UniversalOptions has no Network
		if simple := got.Simple(); !reflect.DeepEqual(simple, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", u, simple, want)
		}
		c, err := redis.NewClient(u)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.(*goredis.Client); !ok || redis.IsCluster(c) {
			t.Errorf("%s: client %T", u, c)
		}
		_ = c.Close()
	}
}

func TestParseClientURLSentinel(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseClientURL("redis-sentinel://app:hunter2pass@s1:26380,s2,[::1]:26381/mymaster" +
		"?db=2&sentinel_username=sen&sentinel_password=sen%26pass&dial_timeout=2s&pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"s1:26380", "s2:26379", "[::1]:26381"}; !slices.Equal(opt.Addrs, want) {
		t.Errorf("addrs %v, want %v", opt.Addrs, want)
	}
	if opt.MasterName != "mymaster" || opt.DB != 2 || opt.Username != "app" || opt.Password != "hunter2pass" ||
		opt.SentinelUsername != "sen" || opt.SentinelPassword != "sen&pass" || opt.DialTimeout != 2*time.Second ||
		opt.PoolSize != 7 || opt.IsClusterMode || opt.TLSConfig != nil {
		t.Errorf("options %+v", opt)
	}
	opt, err = redis.ParseClientURL("rediss-sentinel://s1/m")
	if err != nil || opt.TLSConfig == nil || opt.TLSConfig.ServerName != "" || opt.MasterName != "m" {
		t.Fatalf("TLS sentinel: %+v %v", opt, err)
	}
	c, err := redis.NewClient("redis-sentinel://127.0.0.1:1/m")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*goredis.Client); !ok { // go-redis's failover client is a *Client
		t.Errorf("client %T", c)
	}
	_ = c.Close()
}

func TestParseClientURLCluster(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseClientURL("redis-cluster://:hunter2pass@n1:7000,n2:7001,n3?max_redirects=5&read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"n1:7000", "n2:7001", "n3:6379"}; !slices.Equal(opt.Addrs, want) {
		t.Errorf("addrs %v, want %v", opt.Addrs, want)
	}
	if !opt.IsClusterMode || opt.MasterName != "" || opt.Password != "hunter2pass" || opt.MaxRedirects != 5 ||
		opt.ReadTimeout != 2*time.Second {
		t.Errorf("options %+v", opt)
	}
	// One seed address is still a cluster.
	c, err := redis.NewClient("redis-cluster://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if !redis.IsCluster(c) {
		t.Errorf("client %T", c)
	}
	_ = c.Close()
}

// TestParseClientURLErrorsRepeatNoPassword: whatever is wrong, the error
// names neither password, and says "redis: " once.
func TestParseClientURLErrorsRepeatNoPassword(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"redis://:hunter2pass@127.0.0.1:port/0",
		"redis://:hunter2pass@127.0.0.1:6379/db",
		"http://:hunter2pass@127.0.0.1:6379/0",
		"hunter2pass",
		"redis-sentinel://:hunter2pass@s1:26379,s2:26379", // no master name
		"redis-sentinel://:hunter2pass@s1:26379,,s2/m",    // empty host
		"redis-sentinel://:hunter2pass@s1:port/m",         // bad port
		"redis-sentinel://:hunter2pass@s1/m?sentinel_password=hunter2pass&db=x",
		"redis-sentinel://:hunter2pass@s1/m?password=hunter2pass", // unknown option
		"redis-sentinel://:hunter2pass@s1/m?sentinel_password=a%zzhunter2pass",
		"redis-cluster://:hunter2pass@n1,n2/0", // a cluster has no db
		"redis-cluster://:hunter2pass@n1,n2?db=1",
		"redis-cluster://:hunter2pass@n1,n2?max_redirects=hunter2pass",
		"redis-cluster://:hunter2p%zzass@n1",
		"redis-cluster://:hunter2pass@n1#hunter2pass",
	} {
		_, err := redis.ParseClientURL(u)
		if err == nil {
			t.Errorf("%s parsed", u)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2pass") || strings.Contains(msg, "hunter2p") ||
			!strings.HasPrefix(msg, "redis: ") || strings.Contains(msg, "redis: redis:") {
			t.Errorf("%s: %q", u, msg)
		}
	}
}
