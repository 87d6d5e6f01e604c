package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/internal/backoff"
)

// URL schemes beyond go-redis's own redis://, rediss:// and unix://. The
// s-variants dial TLS to every node (and, for Sentinel, to the sentinels).
const (
	SchemeSentinel    = "redis-sentinel"
	SchemeSentinelTLS = "rediss-sentinel"
	SchemeCluster     = "redis-cluster"
	SchemeClusterTLS  = "rediss-cluster"
)

const (
	defaultSentinelPort = "26379"
	defaultRedisPort    = "6379"
)

// errMalformed stands in for url.Parse's errors, whose text is the whole URL
// (password included).
var errMalformed = errors.New("redis: malformed URL (reserved characters in a password must be percent-encoded)")

// ParseClientURL returns options for go-redis's universal client from one of
//
//	redis://[user:pass@]host:6379[/db][?opts]            one server (go-redis's ParseURL, unchanged)
//	rediss://…                                           the same over TLS
//	unix://[user:pass@]/path/redis.sock[?db=0]           a local socket
//	redis-sentinel://[user:pass@]h1:26379,h2:26379/mymaster[?db=0&sentinel_username=…&sentinel_password=…]
//	redis-cluster://[user:pass@]h1:6379,h2:6379[?opts]   Redis Cluster; any reachable nodes seed the slot map
//	rediss-sentinel://…, rediss-cluster://…              the same over TLS
//
// user:pass authenticate to the Redis servers; on Sentinel the sentinels
// have their own (optional) sentinel_username and sentinel_password. opts
// are go-redis's ParseURL options (dial_timeout, pool_size, …); a cluster
// also takes max_redirects. Its errors never repeat the URL, which may hold
// a password.
func ParseClientURL(raw string) (*goredis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errMalformed
	}
	switch scheme {
	case SchemeSentinel, SchemeSentinelTLS, SchemeCluster, SchemeClusterTLS:
		return parseMultiHost(scheme, rest)
	case "unix":
		opt, err := ParseURL(raw)
		if err != nil {
			return nil, err
		}
		u := universal(opt)
		path := opt.Addr
		// UniversalOptions has no Network: the socket is reached by a dialer.
		u.Addrs = []string{path}
		u.Dialer = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		return u, nil
	default:
		opt, err := ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return universal(opt), nil
	}
}

// NewClient returns go-redis's client for a URL ParseClientURL accepts: a
// plain client, a Sentinel-backed failover client or a cluster client.
func NewClient(raw string) (goredis.UniversalClient, error) {
	opt, err := ParseClientURL(raw)
	if err != nil {
		return nil, err
	}
	if !opt.IsClusterMode {
		return goredis.NewUniversalClient(opt), nil
	}
	copt := opt.Cluster()
	if copt.DialerRetries == 0 {
		// A refused dial means a dead node whose slots a replica takes
		// over: fail fast to the slot-map reload below rather than dial
		// the dead address five times per command.
		copt.DialerRetries = 1
	}
	c := goredis.NewClusterClient(copt)
	c.AddHook(reloadOnFailure{c})
	return c, nil
}

// reloadOnFailure makes a cluster client re-read the slot map when a command
// fails for a reason other than its own. go-redis reloads it on MOVED and
// every minute, but not when a master dies: its slots' commands would keep
// failing against the dead address for up to a minute after a replica took
// over. LazyReload runs in the background, at most every 200 ms. A command
// the topology refused before it ran (see unsent) is then sent once more
// after topologyRetryDelay, so the first command after a promotion succeeds
// instead of failing on the slot map that still names the dead master.
type reloadOnFailure struct{ c *goredis.ClusterClient }

// topologyRetryDelay: the pause before a refused command is sent again.
// The failure asked go-redis to re-read the slot map at once (or, when it
// did less than 200 ms ago, right after that pause), which a loopback
// cluster answers in a few milliseconds. Before the promotion the retry
// fails too and the caller gets that error: a command is held back once,
// briefly, not until the cluster recovers.
const topologyRetryDelay = 100 * time.Millisecond

func (h reloadOnFailure) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if !topologyError(err) {
			return err
		}
		h.c.ReloadState(ctx)
		if !unsent(err) || !backoff.Sleep(ctx, topologyRetryDelay) {
			return err
		}
		cmd.SetErr(nil)
		if err = next(ctx, cmd); topologyError(err) {
			h.c.ReloadState(ctx)
		}
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		again, reload := resendable(cmds)
		if !reload {
			return err
		}
		h.c.ReloadState(ctx)
		if len(again) == 0 || !backoff.Sleep(ctx, topologyRetryDelay) {
			return err
		}
		for _, c := range again {
			c.SetErr(nil)
		}
		_ = next(ctx, again) // each command carries its own result
		for _, c := range again {
			if topologyError(c.Err()) {
				h.c.ReloadState(ctx)
				break
			}
		}
		for _, c := range cmds { // the first error, as go-redis's Exec reports it
			if e := c.Err(); e != nil {
				return e
			}
		}
		return nil
	}
}

// resendable returns the commands of a pipeline that never ran and may be
// sent again, and whether any failed for the topology's sake. A transaction
// (this hook wraps MULTI…EXEC pipelines too) is sent again whole or not at
// all: a part of it sent alone would run outside MULTI.
func resendable(cmds []goredis.Cmder) (again []goredis.Cmder, reload bool) {
	for _, c := range cmds {
		if topologyError(c.Err()) {
			reload = true
			if unsent(c.Err()) {
				again = append(again, c)
			}
		}
	}
	if len(cmds) > 0 && cmds[0].Name() == "multi" && len(again) != len(cmds) {
		again = nil
	}
	return again, reload
}

// unsent: err says the command never ran, so sending it again cannot apply
// it twice: the dial failed, or the node refused it for the topology's sake.
// A connection lost after the write is not here: the command may have run.
func unsent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return refusedByTopology(err)
}

// topologyError: err may mean the cluster changed (a dead node, a failover
// in progress), not that the command was wrong.
func topologyError(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) {
		return false
	}
	var rerr goredis.Error
	if !errors.As(err, &rerr) {
		return true // the network, a timeout
	}
	return refusedByTopology(err)
}

// refusedByTopology: a node refused the command for the cluster's sake (a
// moved slot, a failover under way, a replica or a loading server), before
// running it.
func refusedByTopology(err error) bool {
	for _, p := range []string{"CLUSTERDOWN", "MOVED", "ASK", "TRYAGAIN", "READONLY", "MASTERDOWN", "LOADING"} {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// IsCluster reports whether rdb talks to a Redis Cluster, where keys used
// together must share a hash slot and pub/sub is sharded.
func IsCluster(rdb goredis.UniversalClient) bool {
	_, ok := rdb.(*goredis.ClusterClient)
	return ok
}

// parseMultiHost parses what follows "scheme://" in a Sentinel or Cluster
// URL. url.Parse refuses a comma-separated host list, so the hosts are cut
// out first and the rest (user info, path, query) parsed around a
// placeholder host.
func parseMultiHost(scheme, rest string) (*goredis.UniversalOptions, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostList := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostList = authority[:i+1], authority[i+1:]
	}
	sentinel := scheme == SchemeSentinel || scheme == SchemeSentinelTLS
	defPort := defaultRedisPort
	if sentinel {
		defPort = defaultSentinelPort
	}
	var addrs []string
	for _, h := range strings.Split(hostList, ",") {
		addr, err := hostPort(h, defPort)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}
	u, err := url.Parse("redis://" + userinfo + "placeholder" + tail)
	if err != nil {
		return nil, errMalformed
	}
	if u.Fragment != "" {
		return nil, errors.New("redis: a URL fragment (#…) is not allowed")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New("redis: malformed URL query (reserved characters in a value must be percent-encoded)")
	}
	take := func(name string) string {
		v := q.Get(name)
		q.Del(name)
		return v
	}

	var masterName, sentinelUser, sentinelPass string
	maxRedirects := 0
	if sentinel {
		masterName = strings.Trim(u.Path, "/")
		if masterName == "" || strings.Contains(masterName, "/") {
			return nil, errors.New("redis: a Sentinel URL names its master as the path: redis-sentinel://host:26379/mymaster")
		}
		sentinelUser, sentinelPass = take("sentinel_username"), take("sentinel_password")
	} else {
		if strings.Trim(u.Path, "/") != "" {
			return nil, errors.New("redis: a Cluster URL has no path (a cluster has only database 0)")
		}
		if q.Has("db") {
			return nil, errors.New("redis: a Cluster URL takes no db (a cluster has only database 0)")
		}
		if v := take("max_redirects"); v != "" {
			if maxRedirects, err = strconv.Atoi(v); err != nil {
				return nil, errors.New("redis: invalid max_redirects number")
			}
		}
	}
	// The common options are go-redis's own, parsed by its ParseURL on a
	// URL of the first host (the path is gone: the db is a query option).
	single := &url.URL{Scheme: "redis", User: u.User, Host: addrs[0], RawQuery: q.Encode()}
	opt, err := ParseURL(single.String())
	if err != nil {
		return nil, err
	}
	out := universal(opt)
	out.Addrs = addrs
	if strings.HasPrefix(scheme, "rediss") {
		// No ServerName: crypto/tls takes it from each node's address.
		out.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if sentinel {
		out.MasterName = masterName
		out.SentinelUsername, out.SentinelPassword = sentinelUser, sentinelPass
	} else {
		out.IsClusterMode = true // even with one seed address
		out.MaxRedirects = maxRedirects
	}
	return out, nil
}

// hostPort validates one host[:port] of a host list.
func hostPort(h, defPort string) (string, error) {
	if h == "" {
		return "", errors.New("redis: empty host in the URL's host list")
	}
	host, port := h, defPort
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		var err error
		if host, port, err = net.SplitHostPort(h); err != nil {
			if !strings.HasSuffix(h, "]") { // [::1] without a port
				return "", fmt.Errorf("redis: invalid host %q", h)
			}
			host, port = strings.Trim(h, "[]"), defPort
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("redis: invalid port in host %q", h)
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return "", fmt.Errorf("redis: invalid host %q", h)
	}
	return net.JoinHostPort(host, port), nil
}

// universal carries every option go-redis's ParseURL can set over to the
// universal options (their Simple() gives them back, see clienturl_test).
func universal(o *goredis.Options) *goredis.UniversalOptions {
	return &goredis.UniversalOptions{
		Addrs:                   []string{o.Addr},
		ClientName:              o.ClientName,
		DB:                      o.DB,
		Protocol:                o.Protocol,
		Username:                o.Username,
		Password:                o.Password,
		MaxRetries:              o.MaxRetries,
		MinRetryBackoff:         o.MinRetryBackoff,
		MaxRetryBackoff:         o.MaxRetryBackoff,
		DialTimeout:             o.DialTimeout,
		DialerRetries:           o.DialerRetries,
		DialerRetryTimeout:      o.DialerRetryTimeout,
		ReadTimeout:             o.ReadTimeout,
		WriteTimeout:            o.WriteTimeout,
		ContextTimeoutEnabled:   o.ContextTimeoutEnabled,
		PoolFIFO:                o.PoolFIFO,
		PoolSize:                o.PoolSize,
		MaxConcurrentDials:      o.MaxConcurrentDials,
		PoolTimeout:             o.PoolTimeout,
		MinIdleConns:            o.MinIdleConns,
		MaxIdleConns:            o.MaxIdleConns,
		MaxActiveConns:          o.MaxActiveConns,
		ConnMaxIdleTime:         o.ConnMaxIdleTime,
		ConnMaxLifetime:         o.ConnMaxLifetime,
		ConnMaxLifetimeJitter:   o.ConnMaxLifetimeJitter,
		PipelinePoolSize:        o.PipelinePoolSize,
		PipelineReadBufferSize:  o.PipelineReadBufferSize,
		PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		TLSConfig:               o.TLSConfig,
	}
}
