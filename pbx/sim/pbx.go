package sim

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/pbx"
)

// Errors of the scenario methods and Demo. Match them with errors.Is.
var (
	// ErrUnknownUser: no account has that login, direct or internal number.
	ErrUnknownUser = errors.New("sim: unknown user")
	// ErrUnknownGroup: no group has that id or name.
	ErrUnknownGroup = errors.New("sim: unknown group")
	// ErrNobodyAvailable: every member of the group is unsubscribed or in
	// do-not-disturb.
	ErrNobodyAvailable = errors.New("sim: nobody takes calls in the group")
	// ErrNotRinging: the user asked to answer a group call is no member, is
	// unsubscribed or is in do-not-disturb.
	ErrNotRinging = errors.New("sim: user does not take calls in the group")
	// ErrSameUser: a transfer from a user to themselves.
	ErrSameUser = errors.New("sim: transfer to the same user")
	// ErrInvalidPhone: the phone is not dialable as it is (phone.Dialable).
	ErrInvalidPhone = errors.New("sim: invalid phone")
	// ErrWebhook: a webhook could not be posted, or the CRM answered it with
	// anything but a 2xx JSON body.
	ErrWebhook = errors.New("sim: webhook failed")
	// ErrNoAccounts: Demo has nobody to call.
	ErrNoAccounts = errors.New("sim: no accounts")
)

// PBX is the simulated PBX. It is an http.Handler for the CRM → PBX API and
// plays calls to Config.CRMURL. Its methods are safe for concurrent use.
type PBX struct {
	cfg       Config
	log       *zap.Logger
	hc        *http.Client
	now       func() time.Time
	newCallID func() string
	step      time.Duration
	demoPause time.Duration
	sleep     func(context.Context, time.Duration) error
	diversion string
	accounts  []Account // immutable after New
	groups    []Group   // immutable after New; Members are Account Names

	ctx    context.Context // ends at Close; bounds the calls makeCall plays
	cancel context.CancelFunc
	plays  sync.WaitGroup // the calls makeCall plays

	mu      sync.Mutex
	closed  bool                // guarded by mu
	dnd     map[string]bool     // guarded by mu; keyed by userKey(login)
	off     map[subKey]bool     // guarded by mu; memberships turned off
	history []pbx.HistoryRecord // guarded by mu; in start order
}

// subKey is one membership: userKey(login), lower-cased group id.
type subKey struct{ user, group string }

// New returns a simulated PBX for cfg, filling in the defaults. Group
// members that are no account are dropped with a warning. log may be nil.
func New(cfg Config, log *zap.Logger) *PBX {
	if log == nil {
		log = zap.NewNop()
	}
	p := &PBX{
		cfg:       cfg,
		log:       log.Named("pbxsim"),
		hc:        cfg.HTTPClient,
		now:       cfg.Now,
		newCallID: cfg.NewCallID,
		step:      cfg.Step,
		demoPause: cfg.DemoPause,
		sleep:     cfg.Sleep,
		diversion: cfg.Diversion,
		accounts:  append([]Account(nil), cfg.Accounts...),
		dnd:       map[string]bool{},
		off:       map[subKey]bool{},
	}
	if p.hc == nil {
		p.hc = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.newCallID == nil {
		p.newCallID = NewCallID
	}
	if p.step <= 0 {
		p.step = DefaultStep
	}
	if p.demoPause <= 0 {
		p.demoPause = 3 * p.step
	}
	if p.sleep == nil {
		p.sleep = pause
	}
	if p.diversion == "" {
		p.diversion = DefaultDiversion
	}
	for _, g := range cfg.Groups {
		members := make([]string, 0, len(g.Members))
		for _, m := range g.Members {
			a, ok := p.account(m)
			if !ok {
				p.log.Warn("group member is no account; dropped", zap.String("group", g.ID), zap.String("member", m))
				continue
			}
			members = append(members, a.Name)
		}
		g.Members = members
		p.groups = append(p.groups, g)
	}
	if cfg.CRMURL == "" {
		p.log.Warn("no CRM URL: calls are played without webhooks")
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Close stops the calls makeCall is playing and waits for them; later
// makeCall requests answer 503. It is idempotent. Scenario methods and Demo
// are bounded by their own contexts, not by Close.
func (p *PBX) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.plays.Wait()
}

// clock is the current time in UTC, to the second, as the PBX reports it.
func (p *PBX) clock() time.Time { return p.now().UTC().Truncate(time.Second) }

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
