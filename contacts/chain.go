package contacts

import (
	"context"
	"errors"
	"time"

	"github.com/callpop/callpop/event"
)

// MaxChainReserve is the most time Chain holds back from a directory for
// the ones after it. A fifth of the time left is held back, up to this: with
// the default 1 s contact budget the CRM keeps its whole 800 ms timeout, and
// with a budget shorter than the CRM's timeout the built-in directory behind
// it still gets its turn.
const MaxChainReserve = 100 * time.Millisecond

// Chain returns a directory that asks dirs in turn and answers with the
// first that knows the number, e.g. Chain(crm, csv): the CRM, and the
// built-in directory when the CRM fails, is slow or does not know. nil
// entries are skipped.
//
// When ctx has a deadline, each directory but the last is given one a little
// earlier (see MaxChainReserve), so a slow one cannot spend the whole budget.
// Errors are returned, joined, only when no directory knows the number;
// when one does, the others' errors are dropped (a CRM logs its own).
func Chain(dirs ...event.Directory) event.Directory {
	var ch chain
	for _, d := range dirs {
		if d != nil {
			ch = append(ch, d)
		}
	}
	if len(ch) == 1 {
		return ch[0]
	}
	return ch
}

type chain []event.Directory

func (ch chain) Lookup(ctx context.Context, phone string) (event.Contact, bool, error) {
	var errs []error
	for i, d := range ch {
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if i < len(ch)-1 {
			if dl, ok := ctx.Deadline(); ok {
				if reserve := min(time.Until(dl)/5, MaxChainReserve); reserve > 0 {
					dctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
				}
			}
		}
		c, ok, err := d.Lookup(dctx, phone)
		cancel()
		switch {
		case err != nil:
			errs = append(errs, err)
		case ok:
			return c, true, nil
		}
	}
	return event.Contact{}, false, errors.Join(errs...)
}
