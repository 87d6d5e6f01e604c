// Package guard protects endpoints from too much of a good thing: it finds
// the client's address (trusting X-Forwarded-For only from known proxies),
// limits request rates per address, and keeps the webhook to the PBX's
// networks when an allow-list is set.
package guard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/callpop/callpop/internal/jsonhttp"
)

// ParsePrefixes parses a comma list of CIDRs or single addresses.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("guard: %q is not an address or CIDR", s)
			}
			ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("guard: %q is not a CIDR", s)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client behind r: the peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
// itself a trusted proxy (entries further left are the client's own claims).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !contains(trusted, peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		if a = a.Unmap(); !contains(trusted, a) {
			return a
		}
	}
	return peer
}

// FromTrustedProxy reports whether r's immediate peer is one of the trusted
// proxies, whose X-Forwarded-* headers may be believed.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	peer := peerAddr(r)
	return peer.IsValid() && contains(trusted, peer)
}

// peerAddr is the address r's connection comes from; invalid when unknown.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return peer.Unmap()
}

// Limiter is a token bucket per key (a client address, a user), forgetting
// keys idle for a minute. The zero rate means no limit; a nil *Limiter
// allows everything.
type Limiter[K comparable] struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[K]*bucket // guarded by mu
	swept   time.Time
}

// PerIP is a Limiter by client address.
type PerIP = Limiter[netip.Addr]

type bucket struct {
	*rate.Limiter
	last time.Time
}

// NewLimiter allows each key perSecond requests a second, in bursts of burst.
func NewLimiter[K comparable](perSecond float64, burst int) *Limiter[K] {
	return &Limiter[K]{rate: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[K]*bucket{}}
}

// NewPerIP allows each address perSecond requests a second, in bursts of burst.
func NewPerIP(perSecond float64, burst int) *PerIP { return NewLimiter[netip.Addr](perSecond, burst) }

// Allow takes one token for k.
func (l *Limiter[K]) Allow(k K) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute { // forget idle keys
		for key, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, key)
			}
		}
		l.swept = now
	}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{Limiter: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[k] = b
	}
	b.last = now
	return b.AllowN(now, 1)
}

// DefaultMaxFailureAddrs bounds the addresses a Failures remembers: about
// 150 bytes each (4.5 MB measured at the bound), however many addresses fail.
const DefaultMaxFailureAddrs = 1 << 15

// Failures is a budget of failures (failed logins) per client address: a
// token bucket of burst tokens, refilled at perSecond, that Fail drains and
// nothing else does. An address with less than one token left is Blocked
// until one refills. A nil *Failures, or one of rate zero, blocks nothing.
//
// Memory is bounded: an address whose bucket is full again is forgotten (it
// is the same as a new one), and past maxAddrs remembered addresses an
// arbitrary one is forgotten to make room, which only hands that address
// its budget back early.
type Failures struct {
	rate     float64
	burst    float64
	maxAddrs int

	mu      sync.Mutex
	buckets map[netip.Addr]failBucket // guarded by mu
	swept   time.Time
}

type failBucket struct {
	tokens float64
	at     time.Time // when tokens was right
}

// NewFailures allows each address burst failures at once and perSecond
// after that, remembering at most maxAddrs addresses (<= 0:
// DefaultMaxFailureAddrs).
func NewFailures(perSecond float64, burst, maxAddrs int) *Failures {
	if maxAddrs <= 0 {
		maxAddrs = DefaultMaxFailureAddrs
	}
	return &Failures{rate: perSecond, burst: float64(max(burst, 1)), maxAddrs: maxAddrs,
		buckets: map[netip.Addr]failBucket{}}
}

// tokens is b's budget at now.
func (f *Failures) tokens(b failBucket, now time.Time) float64 {
	return min(f.burst, b.tokens+now.Sub(b.at).Seconds()*f.rate)
}

// Blocked returns how long a has to wait before it may be served again:
// zero when it has a failure left.
func (f *Failures) Blocked(a netip.Addr) time.Duration {
	if f == nil || f.rate <= 0 {
		return 0
	}
	now := time.Now()
	f.mu.Lock()
	b, ok := f.buckets[a]
	f.mu.Unlock()
	if !ok {
		return 0
	}
	t := f.tokens(b, now)
	if t >= 1 {
		return 0
	}
	return time.Duration((1 - t) / f.rate * float64(time.Second))
}

// Fail takes one token from a's budget.
func (f *Failures) Fail(a netip.Addr) {
	if f == nil || f.rate <= 0 {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[a]
	if !ok {
		if now.Sub(f.swept) > time.Minute {
			f.sweep(now)
		}
		for a := range f.buckets { // full of failing addresses: make room, in O(1)
			if len(f.buckets) < f.maxAddrs {
				break
			}
			delete(f.buckets, a)
		}
		b.tokens = f.burst
	} else {
		b.tokens = f.tokens(b, now)
	}
	b.tokens, b.at = max(b.tokens-1, 0), now
	f.buckets[a] = b
}

// sweep forgets the addresses whose budget is whole again. The caller holds
// mu.
func (f *Failures) sweep(now time.Time) {
	for a, b := range f.buckets {
		if f.tokens(b, now) >= f.burst {
			delete(f.buckets, a)
		}
	}
	f.swept = now
}

// Config of a Guard.
type Config struct {
	Trusted []netip.Prefix // proxies whose X-Forwarded-For is believed
	Allow   []netip.Prefix // empty: every network may call
	Limit   *PerIP         // nil: no rate limit
	// Failures, when set, refuses every request from an address that spent
	// its failure budget (the handler charges it, e.g. for a 401), until
	// the budget refills: a brute force cannot go on, a client that never
	// fails is never refused.
	Failures *Failures
	// OnRefuse, when set, counts refusals by reason ("network", "rate",
	// "auth").
	OnRefuse func(reason string)
}

// Wrap lets a request reach next only from an allowed network, within its
// address's rate and failure budget: 403 or 429 JSON otherwise.
func Wrap(cfg Config, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := ClientIP(r, cfg.Trusted)
		if len(cfg.Allow) > 0 && !contains(cfg.Allow, ip) {
			refuse(cfg, "network")
			jsonhttp.Fail(w, jsonhttp.ErrNetworkForbidden)
			return
		}
		if !cfg.Limit.Allow(ip) {
			refuse(cfg, "rate")
			w.Header().Set("Retry-After", "1")
			jsonhttp.Fail(w, jsonhttp.ErrTooManyRequests)
			return
		}
		if d := cfg.Failures.Blocked(ip); d > 0 {
			refuse(cfg, "auth")
			w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
			jsonhttp.Fail(w, jsonhttp.ErrTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func refuse(cfg Config, reason string) {
	if cfg.OnRefuse != nil {
		cfg.OnRefuse(reason)
	}
}
