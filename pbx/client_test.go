package pbx_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/sim"
)

func TestAccountsListsEmployees(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{})
	got, err := c.Accounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, testAccounts) {
		t.Errorf("got %+v, want %+v", got, testAccounts)
	}
}

func TestGroupsListsAllOrTheUsers(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{})
	all, err := c.Groups(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []pbx.Group{{ID: "sales", RealName: "Sales", Ext: "701"}, {ID: "gr001", RealName: "Accounting", Ext: "0705"}}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("all groups: got %+v, want %+v", all, want)
	}
	mine, err := c.Groups(t.Context(), "daria")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mine, want[1:]) {
		t.Errorf("daria's groups: got %+v, want %+v", mine, want[1:])
	}
}

func TestMakeCallReturnsCallIDAndRecordsTheCall(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{})
	// By login, by direct number and by internal number.
	for _, user := range []string{"andy", "79261234567", "708"} {
		id, err := c.MakeCall(t.Context(), user, "+79101234567")
		if err != nil {
			t.Fatalf("MakeCall(%s): %v", user, err)
		}
		if id == "" {
			t.Fatalf("MakeCall(%s): empty call id", user)
		}
		var rec pbx.HistoryRecord
		eventually(t, "the call's history record", func() bool {
			recs, err := c.History(t.Context(), pbx.HistoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.UID == id {
					rec = r
					return true
				}
			}
			return false
		})
		if rec.Type != pbx.TypeOut || rec.Account != "andy" || rec.Client != "+79101234567" || rec.Via != "79261234567" {
			t.Errorf("record %+v", rec)
		}
	}
}

func TestHistoryFiltersByTypeLimitAndTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC) // a Wednesday
	var clock atomicTime
	clock.set(now)
	p, srv := newSimPBX(t, sim.Config{Now: clock.get, RecordURL: "https://rec.example/"})
	ctx := t.Context()
	in, err := p.DirectCall(ctx, "andy", "79101234567")
	if err != nil {
		t.Fatal(err)
	}
	clock.set(now.Add(time.Minute))
	missed, err := p.MissedCall(ctx, "mike", "89101234567")
	if err != nil {
		t.Fatal(err)
	}
	clock.set(now.Add(-48 * time.Hour))
	old, err := p.OutgoingCall(ctx, "daria", "+79161234567")
	if err != nil {
		t.Fatal(err)
	}
	clock.set(now)

	c := newClient(t, srv.URL, pbx.Config{})
	uids := func(q pbx.HistoryQuery) []string {
		t.Helper()
		recs, err := c.History(ctx, q)
		if err != nil {
			t.Fatalf("History(%+v): %v", q, err)
		}
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.UID)
		}
		return ids
	}
	for _, tc := range []struct {
		name string
		q    pbx.HistoryQuery
		want []string
	}{
		{"all", pbx.HistoryQuery{}, []string{old, in, missed}},
		{"type in", pbx.HistoryQuery{Type: pbx.TypeIn}, []string{in}},
		{"type missed", pbx.HistoryQuery{Type: pbx.TypeMissed}, []string{missed}},
		{"type out", pbx.HistoryQuery{Type: pbx.TypeOut}, []string{old}},
		{"limit keeps the latest", pbx.HistoryQuery{Limit: 2}, []string{in, missed}},
		{"today", pbx.HistoryQuery{Period: pbx.PeriodToday}, []string{in, missed}},
		{"this week", pbx.HistoryQuery{Period: pbx.PeriodThisWeek}, []string{old, in, missed}},
		{"last week", pbx.HistoryQuery{Period: pbx.PeriodLastWeek}, nil},
		{"period overrides start", pbx.HistoryQuery{Period: pbx.PeriodToday, Start: now.Add(time.Hour)}, []string{in, missed}},
		{"start and end", pbx.HistoryQuery{Start: now.Add(-time.Hour), End: now}, []string{in}},
	} {
		if got := uids(tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	recs, err := c.History(ctx, pbx.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if r := recs[1]; r.Record != "https://rec.example/"+in+".mp3" || !r.Start.Equal(now) || r.Duration <= 0 || r.Via != sim.DefaultDiversion {
		t.Errorf("answered call: %+v", r)
	}
	if r := recs[2]; r.Record != "" || r.Duration != 0 || r.Wait <= 0 {
		t.Errorf("missed call: %+v", r)
	}
}

func TestSubscriptionTurnsOffAndOn(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{})
	ctx := t.Context()
	status := func() string {
		t.Helper()
		s, err := c.SubscriptionStatus(ctx, "andy", "sales")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); s != pbx.SubscriptionOn {
		t.Fatalf("initial status %q", s)
	}
	if err := c.SubscribeOnCalls(ctx, "andy", "sales", false); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != pbx.SubscriptionOff {
		t.Fatalf("after off: %q", s)
	}
	if err := c.SubscribeOnCalls(ctx, "andy", "", true); err != nil { // all groups
		t.Fatal(err)
	}
	if s := status(); s != pbx.SubscriptionOn {
		t.Fatalf("after on: %q", s)
	}
}

func TestDNDTurnsOnAndOff(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{})
	ctx := t.Context()
	for _, want := range []bool{true, false, true} {
		if err := c.SetDND(ctx, "mike", want); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetDND(ctx, "mike")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("GetDND = %v, want %v", got, want)
		}
	}
}

// commands calls every client method once with the user given.
func commands(user string) map[string]func(context.Context, *pbx.Client) error {
	return map[string]func(context.Context, *pbx.Client) error{
		pbx.CmdAccounts: func(ctx context.Context, c *pbx.Client) error { _, err := c.Accounts(ctx); return err },
		pbx.CmdGroups:   func(ctx context.Context, c *pbx.Client) error { _, err := c.Groups(ctx, user); return err },
		pbx.CmdMakeCall: func(ctx context.Context, c *pbx.Client) error {
			_, err := c.MakeCall(ctx, user, "79101234567")
			return err
		},
		pbx.CmdHistory: func(ctx context.Context, c *pbx.Client) error {
			_, err := c.History(ctx, pbx.HistoryQuery{Period: pbx.PeriodToday})
			return err
		},
		pbx.CmdSubscribeOnCalls: func(ctx context.Context, c *pbx.Client) error { return c.SubscribeOnCalls(ctx, user, "sales", true) },
		pbx.CmdSubscriptionStatus: func(ctx context.Context, c *pbx.Client) error {
			_, err := c.SubscriptionStatus(ctx, user, "sales")
			return err
		},
		pbx.CmdSetDND: func(ctx context.Context, c *pbx.Client) error { return c.SetDND(ctx, user, true) },
		pbx.CmdGetDND: func(ctx context.Context, c *pbx.Client) error { _, err := c.GetDND(ctx, user); return err },
	}
}

func TestEveryCommandReportsInvalidToken(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{Token: "wrong"})
	for name, call := range commands("andy") {
		err := call(t.Context(), c)
		var e *pbx.Error
		if !errors.Is(err, pbx.ErrInvalidToken) || !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Message != "Invalid token" {
			t.Errorf("%s: err = %v", name, err)
		}
		if errors.Is(err, pbx.ErrUnavailable) || errors.Is(err, pbx.ErrInvalidParameters) {
			t.Errorf("%s: %v matches another sentinel", name, err)
		}
		if !strings.HasPrefix(err.Error(), name+": ") {
			t.Errorf("%s: error %q does not name the command", name, err)
		}
	}
}

func TestEveryCommandWithAUserReportsInvalidParametersForAStranger(t *testing.T) {
	t.Parallel()
	_, srv := newSimPBX(t, sim.Config{})
	c := newClient(t, srv.URL, pbx.Config{})
	for name, call := range commands("nobody") {
		if name == pbx.CmdAccounts || name == pbx.CmdHistory {
			continue // they take no user
		}
		err := call(t.Context(), c)
		var e *pbx.Error
		if !errors.Is(err, pbx.ErrInvalidParameters) || !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Message != "Invalid parameters" {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestInvalidArgumentsAreRefusedWithoutARequest(t *testing.T) {
	t.Parallel()
	srv, n := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, srv.URL, pbx.Config{})
	ctx := t.Context()
	for name, err := range map[string]error{
		"makeCall without phone":         func() error { _, err := c.MakeCall(ctx, "andy", ""); return err }(),
		"makeCall without user":          func() error { _, err := c.MakeCall(ctx, "", "79101234567"); return err }(),
		"history with an unknown period": func() error { _, err := c.History(ctx, pbx.HistoryQuery{Period: "decade"}); return err }(),
		"history with an unknown type":   func() error { _, err := c.History(ctx, pbx.HistoryQuery{Type: "lost"}); return err }(),
		"history with a negative limit":  func() error { _, err := c.History(ctx, pbx.HistoryQuery{Limit: -1}); return err }(),
		"history ending before it starts": func() error {
			_, err := c.History(ctx, pbx.HistoryQuery{Start: time.Now(), End: time.Now().Add(-time.Hour)})
			return err
		}(),
		"subscribeOnCalls without user":    c.SubscribeOnCalls(ctx, "", "sales", true),
		"subscriptionStatus without group": func() error { _, err := c.SubscriptionStatus(ctx, "andy", ""); return err }(),
		"set_dnd without user":             c.SetDND(ctx, "", true),
		"get_dnd without user":             func() error { _, err := c.GetDND(ctx, ""); return err }(),
	} {
		var e *pbx.Error
		if !errors.Is(err, pbx.ErrInvalidParameters) || errors.As(err, &e) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if got := n.Load(); got != 0 {
		t.Errorf("%d requests were sent", got)
	}
}

func TestUnconfiguredClientAnswersNotConfigured(t *testing.T) {
	t.Parallel()
	fromNew, err := pbx.New(pbx.Config{})
	if err != nil {
		t.Fatalf("New with an empty URL: %v", err)
	}
	for name, c := range map[string]*pbx.Client{"nil": nil, "zero": {}, "New": fromNew} {
		if c.Configured() {
			t.Errorf("%s: Configured", name)
		}
		for cmd, call := range commands("") {
			if err := call(t.Context(), c); !errors.Is(err, pbx.ErrNotConfigured) {
				t.Errorf("%s client, %s: err = %v", name, cmd, err)
			}
		}
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, cfg := range []pbx.Config{
		{URL: "domain/sys/crm_api.wcgp", Token: "t"},
		{URL: "ftp://domain/sys/crm_api.wcgp", Token: "t"},
		{URL: "https://", Token: "t"},
		{URL: "https://domain/%zz", Token: "t"},
		{URL: "https://domain/sys/crm_api.wcgp"},
	} {
		if _, err := pbx.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	c, err := pbx.New(pbx.Config{URL: "https://domain/sys/crm_api.wcgp", Token: "t"})
	if err != nil || !c.Configured() {
		t.Errorf("New with a good URL: %v", err)
	}
}
