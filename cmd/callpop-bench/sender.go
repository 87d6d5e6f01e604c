//go:build linux

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sender posts webhooks: a pacer hands jobs, on schedule, to a pool of
// workers, each with its own keep-alive connection.
type sender struct {
	o        *options
	r        *runner
	client   *http.Client
	urls     [][]string // by tenant (one without tenants), by target
	prefixes []string   // by tenant: cmd=event&crm_token=…

	rtt, lag hist
	sent     atomic.Int64 // webhooks posted (answered or not)
	calls    atomic.Int64 // group calls started
	trickled atomic.Int64 // storm-time webhooks
	rr       atomic.Uint64
	elapsed  time.Duration // of the last paced phase

	status    [600]atomic.Int64
	transport atomic.Int64
}

func newSender(o *options, r *runner) *sender {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * o.workers,
		MaxIdleConnsPerHost: o.workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	s := &sender{o: o, r: r, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	add := func(path, crmToken string) {
		var urls []string
		for _, t := range o.targets {
			urls = append(urls, t.JoinPath(path).String())
		}
		s.urls = append(s.urls, urls)
		s.prefixes = append(s.prefixes, "cmd=event&crm_token="+url.QueryEscape(crmToken)+"&direction=in")
	}
	switch {
	case o.server == serverCentrifugo:
		add(centrifugoPublishPath, o.crmToken)
	case r.tenants != nil:
		for _, bt := range r.tenants {
			add("/webhook/"+bt.id, bt.crmToken)
		}
	default:
		add("/webhook", o.crmToken)
	}
	return s
}

// errors returns the failed webhooks by HTTP status, and "transport".
func (s *sender) errors() map[string]int64 {
	m := map[string]int64{}
	for code := range s.status {
		if n := s.status[code].Load(); n > 0 {
			m[strconv.Itoa(code)] = n
		}
	}
	if n := s.transport.Load(); n > 0 {
		m["transport"] = n
	}
	return m
}

// post sends one cmd=event webhook and returns its HTTP status (0 when none).
// sched, when set, is when the pacer meant it to go.
func (s *sender) post(ctx context.Context, typ string, user, seq int, callid string, sched time.Time) int {
	tn := s.o.tenantOf(user)
	var b strings.Builder
	b.Grow(len(s.prefixes[tn]) + len(callid) + 80)
	b.WriteString(s.prefixes[tn])
	b.WriteString("&type=")
	b.WriteString(typ)
	b.WriteString("&user=")
	b.WriteString(s.r.userName(user))
	b.WriteString("&phone=79")
	b.WriteString(strconv.Itoa(100000000 + seq%900000000))
	b.WriteString("&callid=")
	b.WriteString(callid)
	u := s.urls[tn][int(s.rr.Add(1)%uint64(len(s.urls[tn])))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(b.String()))
	if err != nil {
		s.transport.Add(1)
		return 0
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req, sched)
}

// do sends one request and returns its HTTP status (0 when none), with the
// sender's accounting: lag against sched, round trip, failures by status.
func (s *sender) do(req *http.Request, sched time.Time) int {
	start := time.Now()
	if !sched.IsZero() {
		s.lag.record(start.Sub(sched))
	}
	s.sent.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		s.transport.Add(1)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.rtt.record(time.Since(start))
	if resp.StatusCode != http.StatusOK && resp.StatusCode < len(s.status) {
		s.status[resp.StatusCode].Add(1)
	}
	return resp.StatusCode
}

// expect records that a webhook was applied: n more frames of ev for seq.
func (s *sender) expect(seq, ev, n int) {
	s.r.calls[seq].expected[ev].Add(int32(n))
	s.r.expectedTotal.Add(int64(n))
}

// direct posts one INCOMING for a new call to user; its callid carries the
// send time.
func (s *sender) direct(ctx context.Context, user, phase int, sched time.Time) bool {
	seq, ok := s.r.newCall(phase, s.o.tenantOf(user))
	if !ok {
		return false
	}
	cid := s.r.callID(seq, time.Now().UnixNano())
	var status int
	if s.o.server == serverCentrifugo {
		status = s.publish(ctx, user, seq, cid, sched)
	} else {
		status = s.post(ctx, "INCOMING", user, seq, cid, sched)
	}
	if status == http.StatusOK {
		s.expect(seq, evIncoming, s.r.perUser[user])
	}
	return true
}

// groupCall is one call ringing G managers at once.
type groupCall struct {
	seq     int
	callid  string
	users   []int
	ok      []atomic.Bool
	pending atomic.Int32
}

// pool runs n workers over jobs until it is closed.
func pool(n int) (chan<- func(), func()) {
	jobs := make(chan func(), 2*n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				f()
			}
		}()
	}
	return jobs, func() { close(jobs); wg.Wait() }
}

// pace calls emit for k = 0, 1, … at rate per second, from now until count
// units (count < 0: no limit) or dur (0: no limit) is reached, stop closes or
// ctx ends. A pacer that falls behind catches up without sleeping, but never
// runs more than 10 % + 1 s past dur. It returns how long it ran.
func pace(ctx context.Context, rate float64, count int, dur time.Duration, stop <-chan struct{},
	emit func(k int, sched time.Time) bool) time.Duration {
	start := time.Now()
	hard := time.Duration(0)
	if dur > 0 {
		hard = dur + dur/10 + time.Second
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; count < 0 || k < count; k++ {
		off := time.Duration(float64(k) / rate * float64(time.Second))
		if dur > 0 && off >= dur {
			break
		}
		if hard > 0 && time.Since(start) > hard {
			break
		}
		sched := start.Add(off)
		if d := time.Until(sched); d > 50*time.Microsecond {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return time.Since(start)
			case <-stop:
				return time.Since(start)
			}
		}
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-stop:
			return time.Since(start)
		default:
		}
		if !emit(k, sched) {
			break
		}
	}
	el := time.Since(start)
	if dur > 0 && el < dur {
		// The last unit went out just before dur: the window is dur.
		el = dur
	}
	return el
}

// runLoad posts direct or group calls at rate webhooks/s for dur.
func (s *sender) runLoad(ctx context.Context, mode string, rate float64, dur time.Duration) {
	jobs, wait := pool(s.o.workers)
	var accepts sync.WaitGroup
	submit := func(f func()) bool {
		select {
		case jobs <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	U, K := s.o.users, s.o.usersPerTenant()
	switch mode {
	case modeDirect:
		s.elapsed = pace(ctx, rate, -1, dur, nil, func(k int, sched time.Time) bool {
			return submit(func() { s.direct(ctx, k%U, phaseLoad, sched) })
		})
	case modeGroup:
		G := s.o.group
		// Every call is G INCOMING webhooks at once and one ACCEPTED, to
		// users of one tenant (tenants take turns).
		s.elapsed = pace(ctx, rate/float64(G+1), -1, dur, nil, func(k int, sched time.Time) bool {
			tn := k % max(s.o.tenants, 1)
			seq, ok := s.r.newCall(phaseLoad, tn)
			if !ok {
				return false
			}
			s.calls.Add(1)
			gc := &groupCall{seq: seq, callid: s.r.callID(seq, time.Now().UnixNano()), users: make([]int, G), ok: make([]atomic.Bool, G)}
			gc.pending.Store(int32(G))
			for j := range G {
				gc.users[j] = tn*K + (k*G+j)%K
			}
			for j := range G {
				if !submit(func() {
					if s.post(ctx, "INCOMING", gc.users[j], seq, gc.callid, sched) == http.StatusOK {
						gc.ok[j].Store(true)
						s.expect(seq, evIncoming, s.r.perUser[gc.users[j]])
					}
					if gc.pending.Add(-1) == 0 {
						if s.o.ring <= 0 {
							s.accept(ctx, gc)
							return
						}
						accepts.Add(1)
						time.AfterFunc(s.o.ring, func() { defer accepts.Done(); s.accept(ctx, gc) })
					}
				}) {
					return false
				}
			}
			return true
		})
	}
	wait()
	accepts.Wait()
}

// accept posts the ACCEPTED of one manager of gc, once every INCOMING of it
// was answered: the others' legs close with CANCELLED answered_elsewhere.
func (s *sender) accept(ctx context.Context, gc *groupCall) {
	G := len(gc.users)
	a := gc.seq % G
	if !gc.ok[a].Load() {
		a = -1
		for j := range G {
			if gc.ok[j].Load() {
				a = j
				break
			}
		}
		if a < 0 {
			return // no leg rang
		}
	}
	s.r.calls[gc.seq].acceptNS.Store(time.Now().UnixNano())
	if s.post(ctx, "ACCEPTED", gc.users[a], gc.seq, gc.callid, time.Time{}) != http.StatusOK {
		return
	}
	s.expect(gc.seq, evAccepted, s.r.perUser[gc.users[a]])
	others := 0
	for j := range G {
		if j != a && gc.ok[j].Load() {
			others += s.r.perUser[gc.users[j]]
		}
	}
	s.expect(gc.seq, evCancelled, others)
}

// runPrime posts one INCOMING to every user, at rate.
func (s *sender) runPrime(ctx context.Context, rate float64) {
	jobs, wait := pool(s.o.workers)
	s.elapsed = pace(ctx, rate, s.o.users, 0, nil, func(k int, sched time.Time) bool {
		select {
		case jobs <- func() { s.direct(ctx, k, phaseLoad, sched) }:
			return true
		case <-ctx.Done():
			return false
		}
	})
	wait()
}

// runTrickle posts INCOMINGs round-robin over the users at rate until stop.
func (s *sender) runTrickle(ctx context.Context, rate float64, stop <-chan struct{}) {
	jobs, wait := pool(min(s.o.workers, 16))
	pace(ctx, rate, -1, 0, stop, func(k int, sched time.Time) bool {
		select {
		case jobs <- func() {
			if s.direct(ctx, k%s.o.users, phaseStorm, sched) {
				s.trickled.Add(1)
			}
		}:
			return true
		case <-ctx.Done():
			return false
		}
	})
	wait()
}
