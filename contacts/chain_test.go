package contacts_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
)

// csvFallback is the built-in directory behind the CRM in these tests.
func csvFallback(tb testing.TB) *contacts.Directory {
	tb.Helper()
	d, err := contacts.Load(strings.NewReader("phone,name,responsible\n79101234567,Acme (CSV),mike\n"))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

var fromCSV = event.Contact{Name: "Acme (CSV)", Responsible: "mike"}

// countingDir counts its look-ups and answers with its fields.
type countingDir struct {
	calls atomic.Int64
	c     event.Contact
	ok    bool
	err   error
}

func (d *countingDir) Lookup(context.Context, string) (event.Contact, bool, error) {
	d.calls.Add(1)
	return d.c, d.ok, d.err
}

func TestChainCRMAnswerWinsAndFallbackIsNotAsked(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusOK, acmeJSON))
	fallback := &countingDir{c: fromCSV, ok: true}
	dir := contacts.Chain(newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil), fallback)
	mustKnow(t, dir, testPhone, acme)
	if n := fallback.calls.Load(); n != 0 {
		t.Errorf("fallback asked %d times, want 0", n)
	}
}

func TestChainFailingCRMFallsBackToBuiltInDirectory(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusInternalServerError, `{"error":"db down"}`))
	dir := contacts.Chain(newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil), csvFallback(t))
	mustKnow(t, dir, "89101234567", fromCSV)
	wantHits(t, srv, 1)
}

func TestChainCRMNotKnowingFallsBackToBuiltInDirectory(t *testing.T) {
	t.Parallel()
	srv := newCRMServer(t, answer(http.StatusOK, `{}`))
	dir := contacts.Chain(newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template()}, nil), csvFallback(t))
	mustKnow(t, dir, testPhone, fromCSV)
}

func TestChainSlowCRMFallsBackWithinCallerDeadline(t *testing.T) {
	t.Parallel()
	// The CRM hangs and its own timeout is longer than the contact budget:
	// the chain still leaves the built-in directory its turn.
	budget := webhookBudget
	srv := newHangingCRMServer(t)
	dir := contacts.Chain(newTestCRM(t, contacts.CRMConfig{URLTemplate: srv.template(), Timeout: time.Minute}, nil), csvFallback(t))
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	start := time.Now()
	c, ok, err := dir.Lookup(ctx, testPhone)
	if err != nil || !ok || c != fromCSV {
		t.Errorf("Lookup = %+v, %v, %v; want %+v", c, ok, err, fromCSV)
	}
	if elapsed := time.Since(start); elapsed > 4*budget {
		t.Errorf("Lookup took %v with a %v deadline", elapsed, budget)
	}
}

// webhookBudget is the webhook's default contact budget.
const webhookBudget = time.Second

// deadlineDir records the deadline it was asked under.
type deadlineDir struct {
	deadline time.Time
	has      bool
}

func (d *deadlineDir) Lookup(ctx context.Context, _ string) (event.Contact, bool, error) {
	d.deadline, d.has = ctx.Deadline()
	return event.Contact{}, false, nil
}

func TestChainHoldsTimeBackForLaterDirectories(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		left        time.Duration
		minReserved time.Duration // at least this much is held back from the first
	}{
		{"DefaultBudgetHoldsBackMaxReserve", time.Second, contacts.MaxChainReserve - 10*time.Millisecond},
		{"ShortBudgetHoldsBackAFifth", 250 * time.Millisecond, 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), tc.left)
			defer cancel()
			dl, _ := ctx.Deadline()
			first, mid, last := &deadlineDir{}, &deadlineDir{}, &deadlineDir{}
			if _, ok, err := contacts.Chain(first, mid, last).Lookup(ctx, testPhone); ok || err != nil {
				t.Fatalf("Lookup = %v, %v", ok, err)
			}
			if !first.has || dl.Sub(first.deadline) < tc.minReserved || dl.Sub(first.deadline) > contacts.MaxChainReserve {
				t.Errorf("first directory's deadline is %v before the caller's, want %v..%v",
					dl.Sub(first.deadline), tc.minReserved, contacts.MaxChainReserve)
			}
			if !mid.has || !mid.deadline.Before(dl) {
				t.Errorf("middle directory's deadline %v is not before the caller's %v", mid.deadline, dl)
			}
			if !last.has || !last.deadline.Equal(dl) {
				t.Errorf("last directory's deadline %v, want the caller's %v", last.deadline, dl)
			}
		})
	}
	t.Run("NoDeadlineAddsNone", func(t *testing.T) {
		t.Parallel()
		first, last := &deadlineDir{}, &deadlineDir{}
		_, _, _ = contacts.Chain(first, last).Lookup(context.Background(), testPhone)
		if first.has || last.has {
			t.Error("a directory got a deadline the caller did not set")
		}
	})
}

func TestChainErrorIsReturnedOnlyWhenNoDirectoryKnows(t *testing.T) {
	t.Parallel()
	errCRM := errors.New("crm down")
	for _, tc := range []struct {
		name    string
		dirs    []event.Directory
		want    event.Contact
		ok      bool
		wantErr error
	}{
		{"LaterKnowsSoErrorIsDropped", []event.Directory{&countingDir{err: errCRM}, &countingDir{c: fromCSV, ok: true}}, fromCSV, true, nil},
		{"NoneKnowsSoErrorIsReturned", []event.Directory{&countingDir{err: errCRM}, &countingDir{}}, event.Contact{}, false, errCRM},
		{"NoneKnowsWithoutErrors", []event.Directory{&countingDir{}, &countingDir{}}, event.Contact{}, false, nil},
		{"FirstKnownWins", []event.Directory{&countingDir{}, &countingDir{c: acme, ok: true}, &countingDir{c: fromCSV, ok: true}}, acme, true, nil},
		{"NilDirectoriesAreSkipped", []event.Directory{nil, &countingDir{c: acme, ok: true}, nil}, acme, true, nil},
		{"EmptyChainKnowsNothing", nil, event.Contact{}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, ok, err := contacts.Chain(tc.dirs...).Lookup(t.Context(), testPhone)
			if c != tc.want || ok != tc.ok || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Lookup = %+v, %v, %v; want %+v, %v, %v", c, ok, err, tc.want, tc.ok, tc.wantErr)
			}
		})
	}
}

func TestChainOfOneIsThatDirectory(t *testing.T) {
	t.Parallel()
	d := csvFallback(t)
	if got := contacts.Chain(nil, d); got != event.Directory(d) {
		t.Errorf("Chain(nil, d) = %T, want d itself", got)
	}
}
