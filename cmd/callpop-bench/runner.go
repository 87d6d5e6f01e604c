//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Events the accounting tells apart.
const (
	evIncoming = iota
	evAccepted
	evCancelled // answered_elsewhere
	evOther
	nEv
)

var evNames = [nEv]string{"INCOMING", "ACCEPTED", "CANCELLED", "other"}

// Phases of a run; latency is measured in phaseLoad only.
const (
	phaseLoad  = 0
	phaseStorm = 1
)

// callStat is what the run knows of one callid: frames expected (added when
// a webhook is answered 200) and delivered (added by the readers), per event.
type callStat struct {
	expected [nEv]atomic.Int32
	got      [nEv]atomic.Int32
	acceptNS atomic.Int64 // when its ACCEPTED was sent (group mode)
	phase    atomic.Int32
	tenant   atomic.Int32 // the tenant index its webhooks went to (--tenants)
}

// eventID is a position in a user's log, "<ms>-<seq>".
type eventID struct{ ms, seq uint64 }

func parseEventID(b []byte) (eventID, bool) {
	i := bytes.IndexByte(b, '-')
	if i <= 0 {
		return eventID{}, false
	}
	a, err1 := strconv.ParseUint(string(b[:i]), 10, 64)
	c, err2 := strconv.ParseUint(string(b[i+1:]), 10, 64)
	return eventID{a, c}, err1 == nil && err2 == nil
}

func (a eventID) less(b eventID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }
func (a eventID) isZero() bool        { return a == eventID{} }
func (a eventID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

func cmpID(a, b eventID) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// session is one logical browser session; a storm gives it a second socket.
type session struct {
	idx, user, target int
	name              string // user name, u<user>

	ws       *wsConn
	done     chan struct{} // closed when the current socket's reader ended
	dropping atomic.Bool   // the tool itself is closing the socket
	up       atomic.Bool   // the current socket had its hello

	// Owned by the reader goroutine; read by others only after done.
	last eventID   // newest id seen
	seen []eventID // ids seen, ascending: duplicates are looked up here
	err  error     // why the last reader ended
}

// runner is one run's state.
type runner struct {
	o       *options
	logf    func(string, ...any)
	tag     string // callid prefix unique to this run: c<tag>-<seq>-<unixnano>
	tokens  []string
	tenants []benchTenant // --tenants; nil: the default tenant

	sessions  []*session
	perUser   []int // live sessions per user, fixed after the hellos
	calls     []callStat
	nextCall  atomic.Int64
	sender    *sender
	probe     *serverProbe
	lat       hist    // INCOMING: webhook send → frame
	latAccept hist    // group: ACCEPTED send → ACCEPTED / CANCELLED frames
	helloLat  [2]hist // socket dial start → hello: [0] first connect, [1] storm reconnect
	lastHello atomic.Int64

	expectedTotal atomic.Int64
	gotTotal      atomic.Int64 // ours, first copies only

	frames, dups, outOfOrder, misrouted, foreign, unexpectedEv, unknownCall atomic.Int64
	dialErrors, noHello, disconnects, resumeMisses, noResumePoint           atomic.Int64
	closeCodes                                                              sync.Map // string → *atomic.Int64
}

func newRunner(o *options, logf func(string, ...any)) *runner {
	r := &runner{o: o, logf: logf, tag: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	if o.tenants > 0 {
		r.tenants = benchTenants(o)
	}
	r.probe = &serverProbe{pids: o.serverPIDs, metrics: o.metricsURL, client: &http.Client{Timeout: 5 * time.Second}}
	return r
}

// userName is the PBX login of user i: <prefix><i>; with tenants, its
// index within its tenant, so every tenant has the same logins.
func (r *runner) userName(i int) string {
	return r.o.userPrefix + strconv.Itoa(i%r.o.usersPerTenant())
}

func (r *runner) countCode(code string) {
	v, _ := r.closeCodes.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// newCall allocates the stats of a callid posted to tenant and returns its
// sequence number.
func (r *runner) newCall(phase, tenant int) (int, bool) {
	seq := int(r.nextCall.Add(1) - 1)
	if seq >= len(r.calls) {
		return 0, false
	}
	r.calls[seq].phase.Store(int32(phase))
	r.calls[seq].tenant.Store(int32(tenant))
	return seq, true
}

func (r *runner) callID(seq int, ns int64) string {
	return "c" + r.tag + "-" + strconv.Itoa(seq) + "-" + strconv.FormatInt(ns, 10)
}

// parseCallID returns the sequence number and send time of one of this run's
// callids.
func (r *runner) parseCallID(b []byte) (seq int, ns int64, ok bool) {
	p := "c" + r.tag + "-"
	if !bytes.HasPrefix(b, []byte(p)) {
		return 0, 0, false
	}
	b = b[len(p):]
	i := bytes.IndexByte(b, '-')
	if i <= 0 {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(string(b[:i]))
	n, err2 := strconv.ParseInt(string(b[i+1:]), 10, 64)
	return s, n, err1 == nil && err2 == nil
}

func (r *runner) mintTokens() error {
	exp := time.Now().Add(time.Hour)
	r.tokens = make([]string, r.o.users)
	for i := range r.tokens {
		claims, secret := jwt.MapClaims{"sub": r.userName(i), "exp": exp.Unix(), "iat": time.Now().Unix()}, r.o.jwtSecret
		if r.tenants != nil {
			bt := r.tenants[r.o.tenantOf(i)]
			claims["tid"], secret = bt.id, bt.jwtSecret
		}
		t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			return err
		}
		r.tokens[i] = t
	}
	return nil
}

// connect opens a socket for every session in list (resuming from each one's
// last id when resume) with at most dialConc in flight, and waits for every
// hello. It returns when all have their hello or failed, or ctx ends.
func (r *runner) connect(ctx context.Context, list []*session, resume bool) error {
	var hellos sync.WaitGroup
	sem := make(chan struct{}, r.o.dialConc)
	hellos.Add(len(list))
	var dialers sync.WaitGroup
	for _, s := range list {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// Those not dialled will never say hello.
			hellos.Done()
			continue
		}
		dialers.Add(1)
		go func(s *session) {
			defer dialers.Done()
			defer func() { <-sem }()
			r.open(ctx, s, resume, hellos.Done)
		}(s)
	}
	dialers.Wait()
	waited := make(chan struct{})
	go func() { hellos.Wait(); close(waited) }()
	hctx, cancel := context.WithTimeout(ctx, r.o.helloWait)
	defer cancel()
	select {
	case <-waited:
		return nil
	case <-hctx.Done():
		return fmt.Errorf("waiting for hellos: %w", hctx.Err())
	}
}

// open dials one socket and starts its reader; helloDone is called exactly
// once, when the hello arrived or the socket failed before it.
func (r *runner) open(ctx context.Context, s *session, resume bool, helloDone func()) {
	start := time.Now()
	s.err = nil
	s.up.Store(false)
	q := "/ws"
	if resume {
		if s.last.isZero() {
			r.noResumePoint.Add(1)
			resume = false
		} else {
			q += "?since=" + s.last.String()
		}
	}
	token := r.tokens[s.user]
	if r.o.server == serverCentrifugo {
		q, token = centrifugoWSPath, "" // the token goes in the connect command
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ws, err := dialWS(dctx, sourceDialer(s.idx, r.o.sourceIPs, 30*time.Second), r.o.targets[s.target], q,
		token, r.o.readLimit)
	cancel()
	if err != nil {
		r.dialErrors.Add(1)
		r.countCode(dialErrorClass(err))
		s.err = err
		helloDone()
		return
	}
	s.ws = ws
	s.dropping.Store(false)
	s.done = make(chan struct{})
	if r.o.server == serverCentrifugo {
		go r.readCentrifugo(s, start, helloDone)
		return
	}
	go r.read(s, resume, start, helloDone)
}

func dialErrorClass(err error) string {
	var h errHTTP
	if errors.As(err, &h) {
		return "dial_http_" + strconv.Itoa(h.status)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "dial_timeout"
	}
	return "dial_error"
}

type helloFrame struct {
	Type      string `json:"type"`
	User      string `json:"user"`
	Last      string `json:"last"`
	Recovered *bool  `json:"recovered"`
}

// read is the session's one goroutine: hello first, then frames until the
// socket ends.
func (r *runner) read(s *session, resume bool, start time.Time, helloDone func()) {
	defer close(s.done)
	msg, err := s.ws.next()
	if err != nil {
		s.err = err
		r.noHello.Add(1)
		r.classifyEnd(s, err)
		helloDone()
		return
	}
	var h helloFrame
	if json.Unmarshal(msg, &h) != nil || h.Type != "hello" {
		s.err = fmt.Errorf("first frame is not a hello: %.80s", msg)
		r.noHello.Add(1)
		s.ws.close()
		helloDone()
		return
	}
	now := time.Now()
	if resume {
		r.helloLat[1].record(now.Sub(start))
	} else {
		r.helloLat[0].record(now.Sub(start))
	}
	s.up.Store(true)
	for {
		v := r.lastHello.Load()
		if now.UnixNano() <= v || r.lastHello.CompareAndSwap(v, now.UnixNano()) {
			break
		}
	}
	if h.User != s.name {
		r.misrouted.Add(1)
	}
	if resume {
		if h.Recovered == nil || !*h.Recovered {
			r.resumeMisses.Add(1)
		}
	} else if id, ok := parseEventID([]byte(h.Last)); ok && s.last.less(id) {
		// A fresh session is promised what follows its hello only.
		s.last = id
		s.seen = append(s.seen, id)
	}
	helloDone()
	for {
		msg, err := s.ws.next()
		if err != nil {
			s.err = err
			r.classifyEnd(s, err)
			return
		}
		r.frame(s, msg, time.Now())
	}
}

// classifyEnd counts a socket that ended without the tool closing it.
func (r *runner) classifyEnd(s *session, err error) {
	if s.dropping.Load() {
		return
	}
	r.disconnects.Add(1)
	var c errClosed
	if errors.As(err, &c) {
		r.countCode("close_" + strconv.Itoa(c.code))
	} else {
		r.countCode("eof_or_reset")
	}
	s.ws.close()
}

// field returns the string value of top-level key in a frame as
// encoding/json writes it ("key":"value", no escapes in the values we read).
func field(msg []byte, key string) []byte {
	var k [32]byte
	kb := append(append(append(k[:0], '"'), key...), '"', ':', '"')
	i := bytes.Index(msg, kb)
	if i < 0 {
		return nil
	}
	v := msg[i+len(kb):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

func (r *runner) frame(s *session, msg []byte, now time.Time) {
	r.frames.Add(1)
	if !bytes.HasPrefix(msg, []byte(`{"type":"call"`)) {
		return // history frames and anything else: not what we measure
	}
	id, ok := parseEventID(field(msg, "id"))
	if !ok {
		r.unexpectedEv.Add(1)
		return
	}
	if string(field(msg, "user")) != s.name {
		r.misrouted.Add(1)
		return
	}
	if s.last.less(id) {
		s.last = id
		s.seen = append(s.seen, id)
	} else {
		i, found := slices.BinarySearchFunc(s.seen, id, cmpID)
		if found {
			r.dups.Add(1)
			return
		}
		r.outOfOrder.Add(1)
		s.seen = slices.Insert(s.seen, i, id)
	}
	seq, ns, ok := r.parseCallID(field(msg, "callid"))
	if !ok {
		r.foreign.Add(1)
		return
	}
	if seq < 0 || seq >= len(r.calls) {
		r.unknownCall.Add(1)
		return
	}
	if r.tenants != nil && int(r.calls[seq].tenant.Load()) != r.o.tenantOf(s.user) {
		// The same login in another tenant: a frame crossed tenants.
		r.misrouted.Add(1)
		return
	}
	ev := evOther
	switch string(field(msg, "event")) {
	case "INCOMING":
		ev = evIncoming
	case "ACCEPTED":
		ev = evAccepted
	case "CANCELLED":
		if string(field(msg, "reason")) == "answered_elsewhere" {
			ev = evCancelled
		}
	}
	st := &r.calls[seq]
	st.got[ev].Add(1)
	r.gotTotal.Add(1)
	if st.phase.Load() == phaseLoad {
		switch ev {
		case evIncoming:
			r.lat.record(now.Sub(time.Unix(0, ns)))
		case evAccepted, evCancelled:
			if a := st.acceptNS.Load(); a > 0 {
				r.latAccept.record(now.Sub(time.Unix(0, a)))
			}
		}
	}
	if r.o.ack {
		var b [96]byte
		a := append(append(append(b[:0], `{"type":"ack","id":"`...), id.String()...), `"}`...)
		_ = s.ws.write(1, a)
	}
}

// dropAll closes every open socket at once and waits for the readers.
func (r *runner) dropAll() {
	for _, s := range r.sessions {
		if s.ws != nil {
			s.dropping.Store(true)
			s.ws.close()
		}
	}
	for _, s := range r.sessions {
		if s.ws != nil && s.done != nil {
			<-s.done
		}
	}
}

// closeAll ends the run: every socket and idle HTTP connection is closed.
func (r *runner) closeAll() {
	r.dropAll()
	if r.sender != nil {
		r.sender.client.CloseIdleConnections()
	}
	r.probe.client.CloseIdleConnections()
}

// drain waits until every expected frame arrived, or the drain time passed.
func (r *runner) drain(ctx context.Context) {
	deadline := time.Now().Add(r.o.drain)
	for r.gotTotal.Load() < r.expectedTotal.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	// A moment more for duplicates, which would come after.
	select {
	case <-time.After(200 * time.Millisecond):
	case <-ctx.Done():
	}
}

// tally adds up expected and delivered frames of calls in phase (or all
// phases when phase < 0).
type tally struct {
	expected, delivered, lost, extra int64
	byEvent                          [nEv][2]int64 // expected, delivered
}

func (r *runner) tally(phase int) tally {
	var t tally
	n := min(int(r.nextCall.Load()), len(r.calls))
	for i := 0; i < n; i++ {
		st := &r.calls[i]
		if phase >= 0 && int(st.phase.Load()) != phase {
			continue
		}
		for ev := 0; ev < nEv; ev++ {
			e, g := int64(st.expected[ev].Load()), int64(st.got[ev].Load())
			t.expected += e
			t.delivered += min(e, g)
			if g < e {
				t.lost += e - g
			} else {
				t.extra += g - e
			}
			t.byEvent[ev][0] += e
			t.byEvent[ev][1] += g
		}
	}
	return t
}

func selfRSS() int64 {
	v, _ := procRSS(os.Getpid())
	return v
}

// run is the whole run: connect, measure memory, post, check.
func (r *runner) run(ctx context.Context) (*report, error) {
	o := r.o
	rep := &report{Server: o.server, Mode: o.mode, Sessions: o.sessions, Users: o.users, Tenants: o.tenants, Rate: o.rate,
		Duration: o.duration.Seconds(), SourceIPs: o.sourceIPs}
	for _, t := range o.targets {
		rep.Targets = append(rep.Targets, t.String())
	}
	if o.mode == modeGroup {
		rep.Group = o.group
	}
	if lim, err := raiseNoFile(); err == nil {
		rep.NoFileLimit = lim
		if uint64(o.sessions)+uint64(o.workers)+64 > lim {
			return nil, fmt.Errorf("%d sessions and %d webhook connections do not fit in this process's %d open files: run several load processes", o.sessions, o.workers, lim)
		}
	}
	if o.sessions/o.users > 32 {
		r.logf("warning: %d sessions per user exceed the hub's default cap of 32 per user", (o.sessions+o.users-1)/o.users)
	}
	if err := r.mintTokens(); err != nil {
		return nil, err
	}
	// Room for every call this run can make.
	maxCalls := 0
	switch o.mode {
	case modeDirect:
		maxCalls = int(o.rate*o.duration.Seconds()) + 16
	case modeGroup:
		maxCalls = int(o.rate/float64(o.group+1)*o.duration.Seconds()) + 16
	case modeStorm:
		maxCalls = o.users + int(o.stormRate*o.timeout.Seconds()) + 16
	}
	r.calls = make([]callStat, maxCalls)
	r.sender = newSender(o, r)

	r.sessions = make([]*session, o.sessions)
	for i := range r.sessions {
		r.sessions[i] = &session{idx: i, user: i % o.users, target: i % len(o.targets), name: r.userName(i % o.users)}
	}

	// Memory before.
	runtime.GC()
	rep.ToolRSSBeforeKiB = selfRSS()
	if r.probe.enabled() {
		rss, _, err := r.probe.sample(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading server RSS: %w", err)
		}
		rep.ServerRSSBeforeKiB = rss
	}

	if o.tenants > 0 {
		r.logf("%d tenants of %d users each", o.tenants, o.usersPerTenant())
	}
	r.logf("opening %d sessions over %d users on %d node(s) from %d source addresses", o.sessions, o.users, len(o.targets), o.sourceIPs)
	t0 := time.Now()
	err := r.connect(ctx, r.sessions, false)
	rep.ConnectSeconds = roundS(time.Since(t0))
	r.perUser = make([]int, o.users)
	for _, s := range r.sessions {
		if s.up.Load() {
			r.perUser[s.user]++
			rep.Connected++
		}
	}
	rep.HelloLatency = r.helloLat[0].summary()
	r.logf("%d sessions up in %.2fs (%d dial errors, %d without hello)", rep.Connected, rep.ConnectSeconds, r.dialErrors.Load(), r.noHello.Load())
	if err != nil {
		r.fill(rep)
		return rep, err
	}
	if rep.Connected == 0 {
		r.fill(rep)
		return rep, errors.New("no session connected")
	}

	// Memory after, once the dust settled.
	sleepCtx(ctx, o.settle)
	runtime.GC()
	rep.ToolRSSAfterKiB = selfRSS()
	rep.ToolKiBPerSession = round1(float64(rep.ToolRSSAfterKiB-rep.ToolRSSBeforeKiB) / float64(rep.Connected))
	if r.probe.enabled() {
		rss, cpu0, err := r.probe.sample(ctx)
		if err == nil {
			rep.ServerRSSAfterKiB = rss
			rep.ServerKiBPerSession = round1(float64(rss-rep.ServerRSSBeforeKiB) / float64(rep.Connected))
		}
		if o.idle > 0 {
			t := time.Now()
			sleepCtx(ctx, o.idle)
			if rss, cpu1, err := r.probe.sample(ctx); err == nil {
				rep.ServerIdleCPUPct = round1(100 * float64(cpu1-cpu0) / float64(time.Since(t)))
				rep.ServerRSSIdleKiB = rss
			}
		}
	} else if o.idle > 0 {
		sleepCtx(ctx, o.idle)
	}
	if ctx.Err() != nil {
		r.fill(rep)
		return rep, ctx.Err()
	}

	var cpuA time.Duration
	if r.probe.enabled() {
		_, cpuA, _ = r.probe.sample(ctx)
	}
	selfA, _ := procCPU(os.Getpid())
	watchA := watchCPU(o.watchPIDs)
	machA, _ := machineCPU()
	waitSelfA, waitSrvA := runqWait(os.Getpid()), r.serverRunqWait()
	rep.LoadAvgStart = loadAvg()
	tl := time.Now()
	switch o.mode {
	case modeDirect, modeGroup:
		r.logf("posting %s webhooks at %.0f/s for %s", o.mode, o.rate, o.duration)
		r.sender.runLoad(ctx, o.mode, o.rate, o.duration)
	case modeStorm:
		// Give every user one event first, so every session has a resume point.
		r.logf("priming: one INCOMING per user at %.0f/s", o.rate)
		r.sender.runPrime(ctx, o.rate)
	}
	loadElapsed := time.Since(tl)
	var serverCPU time.Duration
	selfB, _ := procCPU(os.Getpid())
	machB, _ := machineCPU()
	waitSelfB, waitSrvB := runqWait(os.Getpid()), r.serverRunqWait()
	rep.LoadAvgEnd = loadAvg()
	if loadElapsed > 0 {
		rep.ToolLoadCPUPct = round1(100 * float64(selfB-selfA) / float64(loadElapsed))
		rep.MachineLoadCPUPct = round1(100 * float64(machB-machA) / float64(loadElapsed))
		rep.ToolRunqWaitPct = round1(100 * float64(waitSelfB-waitSelfA) / float64(loadElapsed))
		if len(r.o.serverPIDs) > 0 {
			rep.ServerRunqWaitPct = round1(100 * float64(waitSrvB-waitSrvA) / float64(loadElapsed))
		}
	}
	rep.Webhooks = r.sender.sent.Load()
	rep.AchievedRate = round1(float64(rep.Webhooks) / r.sender.elapsed.Seconds())
	if o.mode == modeGroup {
		rep.CallsPerSecond = round1(float64(r.sender.calls.Load()) / r.sender.elapsed.Seconds())
	}
	r.drain(ctx)
	if r.probe.enabled() {
		if rss, cpuB, err := r.probe.sample(ctx); err == nil && loadElapsed > 0 {
			// Sampled after the drain: the drain's share is small and on
			// the server too.
			serverCPU = cpuB - cpuA
			rep.ServerLoadCPUPct = round1(100 * float64(serverCPU) / float64(loadElapsed))
			rep.ServerRSSEndKiB = rss
		}
	}
	if len(o.watchPIDs) > 0 && loadElapsed > 0 {
		// After the drain, as the server's: frames still in flight count.
		rep.WatchLoadCPUPct = map[string]float64{}
		for name, b := range watchCPU(o.watchPIDs) {
			if a, ok := watchA[name]; ok {
				rep.WatchLoadCPUPct[name] = round1(100 * float64(b-a) / float64(loadElapsed))
			}
		}
	}
	if r.probe.enabled() && loadElapsed > 0 {
		rep.OtherLoadCPUPct = round1(rep.MachineLoadCPUPct - rep.ServerLoadCPUPct - rep.ToolLoadCPUPct)
	}

	if o.mode == modeStorm && ctx.Err() == nil {
		if err := r.storm(ctx, rep); err != nil {
			r.fill(rep)
			return rep, err
		}
	}
	r.fill(rep)
	if ctx.Err() != nil {
		return rep, fmt.Errorf("run cut short: %w", ctx.Err())
	}
	return rep, nil
}

// storm drops every socket at once and reconnects them all with since=<last
// id>, posting events meanwhile, and measures how long until all are back.
func (r *runner) storm(ctx context.Context, rep *report) error {
	o := r.o
	// Every session that had its hello comes back, even one that dropped
	// meanwhile: its frames were counted as expected.
	var live []*session
	for _, s := range r.sessions {
		if s.up.Load() {
			live = append(live, s)
		}
	}
	stop := make(chan struct{})
	posted := make(chan struct{})
	r.lastHello.Store(0)
	t0 := time.Now()
	go func() { defer close(posted); r.sender.runTrickle(ctx, o.stormRate, stop) }()
	r.logf("storm: dropping %d sessions at once", len(live))
	r.dropAll()
	rep.StormDropSeconds = roundS(time.Since(t0))
	tr := time.Now()
	err := r.connect(ctx, live, true)
	back := 0
	for _, s := range live {
		if s.up.Load() {
			back++
		}
	}
	rep.StormReconnected = back
	if lh := r.lastHello.Load(); lh > 0 {
		rep.StormSeconds = roundS(time.Unix(0, lh).Sub(t0))
		rep.StormReconnectSeconds = roundS(time.Unix(0, lh).Sub(tr))
	}
	rep.StormHelloLatency = r.helloLat[1].summary()
	r.logf("storm: %d of %d back in %.2fs", back, len(live), rep.StormSeconds)
	// Keep posting a moment after the last hello: those are live events.
	sleepCtx(ctx, time.Second)
	close(stop)
	<-posted
	r.drain(ctx)
	t := r.tally(phaseStorm)
	rep.StormEvents = r.sender.trickled.Load()
	rep.StormExpected, rep.StormDelivered, rep.StormLost = t.expected, t.delivered, t.lost
	return err
}

func (r *runner) fill(rep *report) {
	t := r.tally(-1)
	rep.Expected, rep.Delivered, rep.Lost, rep.Unexpected = t.expected, t.delivered, t.lost, t.extra
	rep.ByEvent = map[string][2]int64{}
	for ev := 0; ev < nEv; ev++ {
		if t.byEvent[ev] != [2]int64{} {
			rep.ByEvent[evNames[ev]] = t.byEvent[ev]
		}
	}
	rep.Duplicated = r.dups.Load()
	rep.OutOfOrder = r.outOfOrder.Load()
	rep.Misrouted = r.misrouted.Load()
	rep.Foreign = r.foreign.Load()
	rep.Frames = r.frames.Load()
	rep.DialErrors = r.dialErrors.Load()
	rep.NoHello = r.noHello.Load()
	rep.Disconnects = r.disconnects.Load()
	rep.ResumeMisses = r.resumeMisses.Load()
	rep.NoResumePoint = r.noResumePoint.Load()
	rep.Codes = map[string]int64{}
	r.closeCodes.Range(func(k, v any) bool {
		rep.Codes[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	rep.Latency = r.lat.summary()
	if r.o.mode == modeGroup {
		l := r.latAccept.summary()
		rep.AcceptLatency = &l
	}
	if r.sender != nil {
		rep.PostRTT = r.sender.rtt.summary()
		rep.SendLag = r.sender.lag.summary()
		rep.HTTPErrors = r.sender.errors()
		if rep.Webhooks == 0 {
			rep.Webhooks = r.sender.sent.Load()
		}
	}
	rep.OK = rep.Lost == 0 && rep.Duplicated == 0
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func roundS(d time.Duration) float64 { return float64(d.Milliseconds()) / 1e3 }
func round1(f float64) float64       { return math.Round(f*10) / 10 }

// serverRunqWait sums the servers' run-queue waits (0 without --server-pid).
func (r *runner) serverRunqWait() time.Duration {
	var d time.Duration
	for _, pid := range r.o.serverPIDs {
		d += runqWait(pid)
	}
	return d
}
