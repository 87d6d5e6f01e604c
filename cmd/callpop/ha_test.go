package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/internal/redistest"
)

// TestWidgetFollowsASentinelFailover: a widget in a real Chromium, on one of
// two nodes sharing a Sentinel set, shows a ringing call; the master dies.
// Once a replica is promoted, the next call a webhook brings shows as a
// card, and the first call's hangup clears its card: nothing stale stays on
// screen.
func TestWidgetFollowsASentinelFailover(t *testing.T) {
	t.Parallel()
	set := redistest.StartSentinel(t)
	widgetThroughFailover(t, set.URL(), func() time.Duration {
		old, killed := set.KillMaster()
		set.WaitFailover(old, 15*time.Second)
		return time.Since(killed)
	})
}

// TestWidgetFollowsAClusterFailover: the same on Redis Cluster, killing the
// master that holds the user's keys and sharded channel.
func TestWidgetFollowsAClusterFailover(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	widgetThroughFailover(t, c.URL(), func() time.Duration {
		tag := "{andy}" // andy's slot (broker/redis clusterKey)
		old, killed := c.KillMasterOf(tag)
		c.WaitFailover(tag, old, 20*time.Second)
		return time.Since(killed)
	})
}

// widgetThroughFailover runs the scenario above on two nodes given
// redisURL; failover kills a master, waits for the promotion and says how
// long that took.
func widgetThroughFailover(t *testing.T, redisURL string, failover func() time.Duration) {
	a := startPageNode(t, browserConfig(t, "--redis-url", redisURL), "127.0.0.1:0")
	b := startPageNode(t, browserConfig(t, "--redis-url", redisURL), "127.0.0.1:0")
	tab := startChromium(t)
	p := openPage(t, tab, a, "andy", "")

	b.event("INCOMING", "andy", "c1")
	p.waitCard("c1", "INCOMING", "ring")

	took := failover()
	promoted := time.Now()
	retries := b.eventAnswered(10*time.Second, "INCOMING", "andy", "c2", "phone", "74957654321")
	p.waitFor("c2 ringing after the failover", 15*time.Second, func(v widgetView) bool {
		c := v.card("c2")
		return c != nil && c.Event == "INCOMING" && c.State == "ring"
	})
	shown := time.Now()
	retries += b.eventAnswered(10*time.Second, "COMPLETED", "andy", "c1")
	v := p.waitNoCard("c1")
	if len(v.Cards) != 1 || v.Cards[0].CallID != "c2" || !strings.Contains(v.Cards[0].Text, "+7 495 765-43-21") {
		t.Fatalf("after the failover the widget shows %v", v)
	}
	t.Logf("promoted %v after the kill; c2's card shown %v after the promotion; webhooks answered 503 and posted again: %d",
		took.Round(10*time.Millisecond), shown.Sub(promoted).Round(10*time.Millisecond), retries)
}

// eventAnswered posts a cmd=event webhook as a PBX does while Redis fails
// over: again after a 503, every 100 ms, until it is answered 200 (failing
// the test after timeout or on any other answer). It returns how many 503s
// it got.
func (n *node) eventAnswered(timeout time.Duration, typ, user, callid string, extra ...string) int {
	n.t.Helper()
	fields := append([]string{"cmd", "event", "type", typ, "user", user, "callid", callid, "phone", "79101234567"}, extra...)
	deadline := time.Now().Add(timeout)
	for refused := 0; ; refused++ {
		st, body := n.post(fields...)
		if st == http.StatusOK {
			return refused
		}
		if st != http.StatusServiceUnavailable || time.Now().After(deadline) {
			n.t.Fatalf("event %s %s: %d %v (after %d answers 503)", typ, user, st, body, refused)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWidgetDropsACardTheFailoverLost: Redis replicates asynchronously, so a
// webhook the master acknowledged just before it died can be missing on the
// promoted replica. Here the replica is cut off from the master on purpose
// (it cannot authenticate, so it cannot resync) while a call rings: the
// widget shows the card, the master dies, and the promoted replica has never
// heard of the call. With no further webhook for it, the card goes all the
// same: the session's last frame is not in the new master's log, so its
// catch-up fails, the widget reconnects and its fresh hello lists no call.
func TestWidgetDropsACardTheFailoverLost(t *testing.T) {
	t.Parallel()
	set := redistest.StartSentinel(t)
	a := startPageNode(t, browserConfig(t, "--redis-url", set.URL()), "127.0.0.1:0")
	b := startPageNode(t, browserConfig(t, "--redis-url", set.URL()), "127.0.0.1:0")
	tab := startChromium(t)
	p := openPage(t, tab, a, "andy", "")
	b.event("INCOMING", "andy", "c0")
	p.waitCard("c0", "INCOMING", "ring")
	b.event("COMPLETED", "andy", "c0") // andy's log now has entries the replica holds
	p.waitNoCard("c0")

	master := set.Master()
	replica := set.Nodes[0]
	if replica == master {
		replica = set.Nodes[1]
	}
	ctx := context.Background()
	rc := replica.Client()
	// The master has no password: AUTH fails and the replica stays unsynced.
	if err := rc.ConfigSet(ctx, "masterauth", "not-the-masters").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ClientKillByFilter(ctx, "TYPE", "master").Err(); err != nil {
		t.Fatal(err)
	}
	b.event("INCOMING", "andy", "c1")
	p.waitCard("c1", "INCOMING", "ring")
	if n, err := master.Client().Exists(ctx, "callpop:call:c1").Result(); err != nil || n != 1 {
		t.Fatalf("the master does not hold c1 (%d, %v)", n, err)
	}

	old, killed := set.KillMaster()
	if old != master {
		t.Fatalf("killed %s, not the master %s", old.Addr(), master.Addr())
	}
	set.WaitFailover(old, 15*time.Second)
	promoted := time.Now()
	if n, err := rc.Exists(ctx, "callpop:call:c1").Result(); err != nil || n != 0 {
		t.Fatalf("the promoted replica holds c1 (%d, %v): the write was not lost, the test proves nothing", n, err)
	}
	p.waitFor("c1's card gone without a webhook", 20*time.Second, func(v widgetView) bool {
		return v.Status == "live" && len(v.Cards) == 0
	})
	gone := time.Now()
	b.eventAnswered(10*time.Second, "INCOMING", "andy", "c2", "phone", "74957654321")
	p.waitCard("c2", "INCOMING", "ring")
	t.Logf("promoted %v after the kill; the lost call's card gone %v after the promotion",
		promoted.Sub(killed).Round(10*time.Millisecond), gone.Sub(promoted).Round(10*time.Millisecond))
}
