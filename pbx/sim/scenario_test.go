package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/sim"
)

// checkCommon checks the fields every webhook of a call carries.
func checkCommon(t *testing.T, fs []url.Values, callid, phone string) {
	t.Helper()
	for i, f := range fs {
		if f.Get("crm_token") != crmToken || f.Get("callid") != callid || f.Get("phone") != phone {
			t.Errorf("post %d %v: crm_token, callid or phone wrong", i, f)
		}
	}
}

// checkHistory checks a history post.
func checkHistory(t *testing.T, f url.Values, typ, status, user string, link bool) {
	t.Helper()
	if f.Get("cmd") != "history" || f.Get("type") != typ || f.Get("status") != status || f.Get("user") != user {
		t.Errorf("history %v: want type %s status %s user %s", f, typ, status, user)
	}
	if _, err := pbx.ParseTime(f.Get("start")); err != nil {
		t.Errorf("history start: %v", err)
	}
	if d, err := strconv.Atoi(f.Get("duration")); err != nil || d < 0 || (status == "Success") != (d > 0) {
		t.Errorf("history duration %q", f.Get("duration"))
	}
	if got := f.Get("link") != ""; got != link {
		t.Errorf("history link %q", f.Get("link"))
	}
}

func TestDirectCallPostsContactIncomingAcceptedCompletedHistory(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	id, err := p.DirectCall(t.Context(), "andy", "79101234567")
	if err != nil {
		t.Fatal(err)
	}
	fs := c.forms()
	want := []string{"contact", "event INCOMING andy", "event ACCEPTED andy", "event COMPLETED andy", "history andy"}
	if got := steps(fs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	checkCommon(t, fs, id, "79101234567")
	for _, f := range fs[1:] {
		if f.Get("direction") != "in" && f.Get("cmd") == "event" || f.Get("ext") != "708" || f.Get("telnum") != "79261234567" ||
			f.Get("diversion") != sim.DefaultDiversion || f.Has("groupRealName") {
			t.Errorf("post %v", f)
		}
	}
	checkHistory(t, fs[4], "in", "Success", "andy", true)
	if link := fs[4].Get("link"); link != "https://records.example/"+id+".mp3" {
		t.Errorf("link %q", link)
	}
	if h := p.History(); len(h) != 1 || h[0].UID != id || h[0].Type != pbx.TypeIn {
		t.Errorf("history %+v", h)
	}
}

func TestGroupCallCancelsEveryMemberButTheOneWhoAnswered(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	id, err := p.GroupCall(t.Context(), "sales", "mike", "+79101234567")
	if err != nil {
		t.Fatal(err)
	}
	fs := c.forms()
	checkCommon(t, fs, id, "+79101234567")
	if fs[0].Get("cmd") != "contact" {
		t.Errorf("first post %v", fs[0])
	}
	byType := map[string][]string{}
	accepted := -1
	for i, f := range fs[1:] {
		if f.Get("cmd") == "event" {
			byType[f.Get("type")] = append(byType[f.Get("type")], f.Get("user"))
			if f.Get("groupRealName") != "Sales" {
				t.Errorf("event without groupRealName: %v", f)
			}
		}
		switch f.Get("type") {
		case "ACCEPTED":
			accepted = i
		case "INCOMING":
			if accepted >= 0 {
				t.Errorf("INCOMING after ACCEPTED: %v", f)
			}
		case "CANCELLED":
			if accepted < 0 {
				t.Errorf("CANCELLED before ACCEPTED: %v", f)
			}
		}
	}
	members := []string{"andy", "mike", "daria", "test"}
	if got := byType["INCOMING"]; !sameSet(got, members) {
		t.Errorf("INCOMING for %v, want every member %v", got, members)
	}
	if got := byType["ACCEPTED"]; !reflect.DeepEqual(got, []string{"mike"}) {
		t.Errorf("ACCEPTED for %v, want exactly mike", got)
	}
	if got := byType["CANCELLED"]; !sameSet(got, []string{"andy", "daria", "test"}) {
		t.Errorf("CANCELLED for %v, want every other member", got)
	}
	if got := byType["COMPLETED"]; !reflect.DeepEqual(got, []string{"mike"}) {
		t.Errorf("COMPLETED for %v, want mike", got)
	}
	last := fs[len(fs)-1]
	checkHistory(t, last, "in", "Success", "mike", true)
	if last.Get("groupRealName") != "Sales" {
		t.Errorf("history without groupRealName: %v", last)
	}
	if n := len(fs); n != 1+4+1+3+1+1 {
		t.Errorf("%d posts: %q", n, steps(fs))
	}
}

func TestGroupCallCancelsInShuffledOrder(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	orders := map[string]bool{}
	for range 20 {
		id, err := p.GroupCall(t.Context(), "sales", "mike", "79101234567")
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, f := range c.forms(id) {
			if f.Get("type") == "CANCELLED" {
				order = append(order, f.Get("user"))
			}
		}
		orders[strings.Join(order, ",")] = true
	}
	if len(orders) < 2 { // all 20 alike: odds 6^-19
		t.Errorf("CANCELLED always in the order %v", orders)
	}
}

func TestGroupCallRingsOnlySubscribedMembersNotInDND(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	for _, f := range []url.Values{
		cmd("set_dnd", "user", "andy", "state", "true"),
		cmd("subscribeoncalls", "user", "daria", "group_id", "sales", "status", "off"),
	} {
		if w := do(p, http.MethodPost, f); w.Code != http.StatusOK {
			t.Fatalf("%v: %d", f, w.Code)
		}
	}
	id, err := p.GroupCall(t.Context(), "Sales", "", "79101234567") // by name; anyone answers
	if err != nil {
		t.Fatal(err)
	}
	var ringing, accepted []string
	for _, f := range c.forms(id) {
		switch f.Get("type") {
		case "INCOMING":
			ringing = append(ringing, f.Get("user"))
		case "ACCEPTED":
			accepted = append(accepted, f.Get("user"))
		}
	}
	if !sameSet(ringing, []string{"mike", "test"}) || len(accepted) != 1 || !slices.Contains(ringing, accepted[0]) {
		t.Errorf("ringing %v, accepted %v", ringing, accepted)
	}
	if _, err := p.GroupCall(t.Context(), "sales", "andy", "79101234567"); !errors.Is(err, sim.ErrNotRinging) {
		t.Errorf("answered by a member in DND: %v", err)
	}
	do(p, http.MethodPost, cmd("subscribeOnCalls", "user", "daria", "status", "off"))
	if _, err := p.GroupCall(t.Context(), "gr001", "", "79101234567"); !errors.Is(err, sim.ErrNobodyAvailable) {
		t.Errorf("group with nobody available: %v", err)
	}
}

func TestMissedCallPostsIncomingCancelledHistoryMissed(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	id, err := p.MissedCall(t.Context(), "mike", "89101234567")
	if err != nil {
		t.Fatal(err)
	}
	fs := c.forms()
	want := []string{"contact", "event INCOMING mike", "event CANCELLED mike", "history mike"}
	if got := steps(fs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	checkCommon(t, fs, id, "89101234567")
	checkHistory(t, fs[3], "in", "Missed", "mike", false)
	if h := p.History(); len(h) != 1 || h[0].Type != pbx.TypeMissed || h[0].Duration != 0 || h[0].Wait <= 0 {
		t.Errorf("history %+v", h)
	}
}

func TestTransferMovesTheCallToANewLeg(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	first, second, err := p.Transfer(t.Context(), "andy", "daria", "79101234567")
	if err != nil {
		t.Fatal(err)
	}
	if first == "" || second == "" || first == second {
		t.Fatalf("callids %q, %q", first, second)
	}
	fs := c.forms()
	want := []string{
		"contact",
		"event INCOMING andy", "event ACCEPTED andy",
		"event INCOMING daria", "event ACCEPTED daria",
		"event TRANSFERRED andy",
		"event COMPLETED daria",
		"history andy", "history daria",
	}
	if got := steps(fs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	wantIDs := []string{first, first, first, second, second, first, second, first, second}
	for i, f := range fs {
		if f.Get("callid") != wantIDs[i] {
			t.Errorf("post %d %q: callid %q, want %q", i, want[i], f.Get("callid"), wantIDs[i])
		}
		if f.Get("phone") != "79101234567" {
			t.Errorf("post %d: phone %q", i, f.Get("phone"))
		}
	}
	if got := fs[5].Get("second_callid"); got != second {
		t.Errorf("TRANSFERRED second_callid %q, want %q", got, second)
	}
	checkHistory(t, fs[7], "in", "Success", "andy", true)
	checkHistory(t, fs[8], "in", "Success", "daria", true)
	if _, _, err := p.Transfer(t.Context(), "andy", "ANDY", "79101234567"); !errors.Is(err, sim.ErrSameUser) {
		t.Errorf("transfer to oneself: %v", err)
	}
}

func TestOutgoingCallPostsOutgoingAcceptedCompletedHistoryOut(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	id, err := p.OutgoingCall(t.Context(), "andy", "+79101234567")
	if err != nil {
		t.Fatal(err)
	}
	fs := c.forms()
	want := []string{"event OUTGOING andy", "event ACCEPTED andy", "event COMPLETED andy", "history andy"}
	if got := steps(fs); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	checkCommon(t, fs, id, "+79101234567")
	for _, f := range fs {
		if f.Get("direction") != "out" && f.Get("cmd") == "event" || f.Has("diversion") {
			t.Errorf("post %v", f)
		}
	}
	checkHistory(t, fs[3], "out", "Success", "andy", true)
	if h := p.History(); len(h) != 1 || h[0].Via != "79261234567" || h[0].Type != pbx.TypeOut {
		t.Errorf("history %+v", h)
	}
}

func TestMakeCallAnswersAtOnceAndPlaysTheCall(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	w := do(p, http.MethodPost, cmd("makeCall", "user", "708", "phone", "79101234567"))
	var a struct{ CallID string }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &a) != nil || a.CallID == "" {
		t.Fatalf("makeCall: %d %s", w.Code, w.Body)
	}
	c.waitFor("the call's history", func(fs []url.Values) bool {
		return slices.ContainsFunc(fs, func(f url.Values) bool { return f.Get("cmd") == "history" && f.Get("callid") == a.CallID })
	})
	want := []string{"event OUTGOING andy", "event ACCEPTED andy", "event COMPLETED andy", "history andy"}
	if got := steps(c.forms(a.CallID)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCallIDsComeFromTheConfiguredGenerator(t *testing.T) {
	t.Parallel()
	n := 0
	p := newPBX(t, "", func(cfg *sim.Config) {
		cfg.NewCallID = func() string { n++; return "ID-" + strconv.Itoa(n) } // scenarios run one at a time here
	})
	first, second, err := p.Transfer(t.Context(), "andy", "mike", "79101234567")
	if err != nil || first != "ID-1" || second != "ID-2" {
		t.Errorf("Transfer = %q, %q, %v", first, second, err)
	}
	if id := sim.NewCallID(); len(id) != 20+1+4 || id[20] != '-' || id == sim.NewCallID() {
		t.Errorf("NewCallID = %q", id)
	}
}

func TestScenarioFailsWhenTheCRMRefuses(t *testing.T) {
	t.Parallel()
	for name, answer := range map[string]func(url.Values) (int, string){
		"500":         func(url.Values) (int, string) { return http.StatusInternalServerError, `{"error":"boom"}` },
		"401":         func(url.Values) (int, string) { return http.StatusUnauthorized, `{"error":"Invalid token"}` },
		"not JSON":    func(url.Values) (int, string) { return http.StatusOK, "OK" },
		"empty body":  func(url.Values) (int, string) { return http.StatusOK, "" },
		"history 400": func(f url.Values) (int, string) { return status(f, "history", 400), "{}" },
	} {
		c := newCRM(t)
		c.setAnswer(answer)
		p := newPBX(t, c.srv.URL)
		if _, err := p.DirectCall(t.Context(), "andy", "79101234567"); !errors.Is(err, sim.ErrWebhook) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A failed contact look-up alone does not stop the call.
	c := newCRM(t)
	c.setAnswer(func(f url.Values) (int, string) { return status(f, "contact", 500), "{}" })
	p := newPBX(t, c.srv.URL)
	if _, err := p.DirectCall(t.Context(), "andy", "79101234567"); err != nil {
		t.Errorf("contact refused: %v", err)
	}
	// Nor does an unreachable CRM go unnoticed.
	c.srv.Close()
	if _, err := p.DirectCall(t.Context(), "andy", "79101234567"); !errors.Is(err, sim.ErrWebhook) {
		t.Errorf("CRM down: %v", err)
	}
}

// status is bad for forms of cmd, 200 for the others.
func status(f url.Values, cmd string, bad int) int {
	if f.Get("cmd") == cmd {
		return bad
	}
	return http.StatusOK
}

func TestScenarioStopsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL, func(cfg *sim.Config) { cfg.Step = time.Hour })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := p.DirectCall(ctx, "andy", "79101234567")
		done <- err
	}()
	c.waitFor("INCOMING", func(fs []url.Values) bool { return len(fs) == 2 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("DirectCall did not stop")
	}
	if h := p.History(); len(h) != 0 {
		t.Errorf("an unfinished call was recorded: %+v", h)
	}
}

func TestCloseStopsPlayingAndRefusesMakeCall(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL, func(cfg *sim.Config) { cfg.Step = time.Hour })
	if w := do(p, http.MethodPost, cmd("makeCall", "user", "andy", "phone", "79101234567")); w.Code != http.StatusOK {
		t.Fatalf("makeCall: %d", w.Code)
	}
	c.waitFor("OUTGOING", func(fs []url.Values) bool { return len(fs) == 1 })
	closed := make(chan struct{})
	go func() {
		p.Close()
		p.Close() // idempotent
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	if w := do(p, http.MethodPost, cmd("makeCall", "user", "andy", "phone", "79101234567")); w.Code != http.StatusServiceUnavailable {
		t.Errorf("makeCall after Close: %d", w.Code)
	}
}

func TestScenariosRefuseUnknownUsersGroupsAndPhones(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	ctx := t.Context()
	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"direct, unknown user": {func() error { _, err := p.DirectCall(ctx, "nobody", "79101234567"); return err }(), sim.ErrUnknownUser},
		"direct, bad phone":    {func() error { _, err := p.DirectCall(ctx, "andy", "call me"); return err }(), sim.ErrInvalidPhone},
		"missed, empty phone":  {func() error { _, err := p.MissedCall(ctx, "andy", ""); return err }(), sim.ErrInvalidPhone},
		"group, unknown":       {func() error { _, err := p.GroupCall(ctx, "nogroup", "", "79101234567"); return err }(), sim.ErrUnknownGroup},
		"group, stranger":      {func() error { _, err := p.GroupCall(ctx, "sales", "nobody", "79101234567"); return err }(), sim.ErrUnknownUser},
		"group, not a member":  {func() error { _, err := p.GroupCall(ctx, "gr001", "andy", "79101234567"); return err }(), sim.ErrNotRinging},
		"transfer, stranger":   {func() error { _, _, err := p.Transfer(ctx, "andy", "nobody", "79101234567"); return err }(), sim.ErrUnknownUser},
		"outgoing, stranger":   {func() error { _, err := p.OutgoingCall(ctx, "nobody", "79101234567"); return err }(), sim.ErrUnknownUser},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, tc.err, tc.want)
		}
	}
}

func TestWithoutCRMURLCallsAreStillRecorded(t *testing.T) {
	t.Parallel()
	p := newPBX(t, "")
	if _, err := p.GroupCall(t.Context(), "sales", "", "79101234567"); err != nil {
		t.Fatal(err)
	}
	if h := p.History(); len(h) != 1 {
		t.Errorf("history %+v", h)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
