package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestComposeSentinelConfigOnRealServers runs the Sentinel configuration of
// compose/compose.sentinel.yaml — its lines as written, with the service
// names and ports swapped for loopback ones — on real redis-server and
// redis-sentinel processes, then a callpop node on the nodes' URL: the
// three Sentinels agree on the master, find its replica and each other and
// reach their quorum, and the node gets ready through them. (Docker itself
// is not run; deploy/k8scheck checks the Compose file's shape.)
func TestComposeSentinelConfigOnRealServers(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"redis-server", "redis-sentinel"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (run scripts/test.sh, which installs it): %v", bin, err)
		}
	}
	b, err := os.ReadFile("compose/compose.sentinel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	overlay := string(b)
	block := regexp.MustCompile(`(?s)printf '%s\\n'(.*?)> /tmp/sentinel\.conf`).FindStringSubmatch(overlay)
	if block == nil {
		t.Fatal("compose.sentinel.yaml: no printf … > /tmp/sentinel.conf block")
	}
	var lines []string
	for _, m := range regexp.MustCompile(`'([^']*)'|"([^"]*)"`).FindAllStringSubmatch(block[1], -1) {
		lines = append(lines, m[1]+m[2])
	}
	urlm := regexp.MustCompile(`CALLPOP_REDIS_URL: (redis-sentinel://\S+)`).FindStringSubmatch(overlay)
	if urlm == nil {
		t.Fatal("compose.sentinel.yaml: no CALLPOP_REDIS_URL: redis-sentinel://…")
	}

	dir := t.TempDir()
	master, replica := freePort(t), freePort(t)
	startRedis(t, dir, "master", "--port", strconv.Itoa(master), "--replica-announce-ip", "localhost")
	startRedis(t, dir, "replica", "--port", strconv.Itoa(replica), "--replica-announce-ip", "localhost",
		"--replicaof", "localhost", strconv.Itoa(master))

	url := urlm[1]
	var sentinels []string
	var procs []*proc
	for i := 1; i <= 3; i++ {
		port := strconv.Itoa(freePort(t))
		sentinels = append(sentinels, "127.0.0.1:"+port)
		conf := strings.Join(lines, "\n") + "\n"
		for _, r := range [][2]string{
			{"port 26379\n", "port " + port + "\n"},
			{"announce-ip $$SENTINEL_NAME\n", "announce-ip localhost\n"},
			{" redis 6379 ", " localhost " + strconv.Itoa(master) + " "},
		} {
			if !strings.Contains(conf, r[0]) {
				t.Fatalf("the Sentinel configuration lost %q:\n%s", r[0], conf)
			}
			conf = strings.Replace(conf, r[0], r[1], 1)
		}
		path := filepath.Join(dir, "sentinel"+strconv.Itoa(i)+".conf")
		writeFile(t, path, conf)
		procs = append(procs, start(t, "sentinel"+strconv.Itoa(i), filepath.Join(dir, "sentinel"+strconv.Itoa(i)+".log"), exec.Command("redis-sentinel", path)))
		url = strings.Replace(url, "sentinel"+strconv.Itoa(i)+":26379", "127.0.0.1:"+port, 1)
	}
	set := regexp.MustCompile(`sentinel monitor (\S+) `).FindStringSubmatch(strings.Join(lines, "\n"))[1]

	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for i, addr := range sentinels {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: addr})
		for {
			if procs[i].exited() {
				t.Fatalf("%s exited: it refused the configuration", procs[i].name)
			}
			q, qerr := c.CkQuorum(ctx, set).Result()
			others, _ := c.Sentinels(ctx, set).Result()
			replicas, _ := c.Replicas(ctx, set).Result()
			if qerr == nil && strings.HasPrefix(q, "OK") && len(others) == 2 && len(replicas) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s: quorum %q %v, %d other sentinels, %d replicas; want OK, 2, 1", addr, q, qerr, len(others), len(replicas))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if m, err := c.GetMasterAddrByName(ctx, set).Result(); err != nil || len(m) != 2 || m[1] != strconv.Itoa(master) {
			t.Errorf("sentinel %s: master %v %v, want port %d", addr, m, err, master)
		}
		_ = c.Close()
	}

	bin := buildCallpop(t, repoRoot(t), dir)
	n := startNode(t, bin, url, dir, "sentinel")
	n.waitReady(t)
}

// startRedis starts a redis-server without persistence, stopped at test end.
func startRedis(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	args = append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)
	port := args[len(args)-1]
	for i, a := range args {
		if a == "--port" {
			port = args[i+1]
		}
	}
	p := start(t, name, filepath.Join(dir, name+".log"), exec.Command("redis-server", args...))
	waitFor(t, p, name+" answering PING", func() bool {
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + port})
		defer c.Close()
		return c.Ping(context.Background()).Err() == nil
	})
}
