package sim_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx/sim"
)

func TestDemoPlaysEveryScenarioUntilCancelled(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	p := newPBX(t, c.srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Demo(ctx) }()

	seen := func(fs []url.Values, typ string) bool {
		for _, f := range fs {
			if f.Get("type") == typ || f.Get("status") == typ {
				return true
			}
		}
		return false
	}
	fs := c.waitFor("every kind of call", func(fs []url.Values) bool {
		for _, typ := range []string{"INCOMING", "OUTGOING", "TRANSFERRED", "CANCELLED", "Missed", "Success"} {
			if !seen(fs, typ) {
				return false
			}
		}
		return true
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Demo = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Demo did not stop")
	}
	phone := regexp.MustCompile(`^(7|8|\+7)\d{10}$`)
	for _, f := range fs {
		if !phone.MatchString(f.Get("phone")) {
			t.Errorf("phone %q", f.Get("phone"))
		}
		if f.Get("crm_token") != crmToken {
			t.Errorf("crm_token %q", f.Get("crm_token"))
		}
	}
	var groupCall bool
	for _, f := range fs {
		groupCall = groupCall || f.Get("groupRealName") != ""
	}
	if !groupCall {
		t.Error("no group call")
	}
}

func TestDemoWithoutAccountsFails(t *testing.T) {
	t.Parallel()
	p := sim.New(sim.Config{}, nil)
	defer p.Close()
	if err := p.Demo(t.Context()); !errors.Is(err, sim.ErrNoAccounts) {
		t.Errorf("Demo = %v", err)
	}
}

func TestDemoCallsMostlyComeFromKnownPhones(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	known := "79101234567"
	p := newPBX(t, c.srv.URL, func(cfg *sim.Config) { cfg.Phones = []string{known} })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Demo(ctx) }()
	fs := c.waitFor("ten calls", func(fs []url.Values) bool {
		n := 0
		for _, f := range fs {
			if f.Get("cmd") == "history" {
				n++
			}
		}
		return n >= 10
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Demo = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Demo did not stop")
	}
	n := 0
	for _, f := range fs {
		if f.Get("cmd") == "history" && f.Get("phone") == known {
			n++
		}
	}
	if n == 0 { // each call is known with odds 3/4: none in ten, 4^-10
		t.Error("no call came from the known phone")
	}
}
