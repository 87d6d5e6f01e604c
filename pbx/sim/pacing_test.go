package sim_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx/sim"
)

// sleeps records every wait a PBX asks for and returns at once, so calls
// paced like an office run in no time.
type sleeps struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = append(s.ds, d)
	return ctx.Err()
}

// take returns the waits so far and forgets them.
func (s *sleeps) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.ds
	s.ds = nil
	return ds
}

// secs is d in the history's whole seconds.
func secs(d time.Duration) string { return strconv.Itoa(int(d.Round(time.Second) / time.Second)) }

// TestSimCallsRingAndTalkAsConfiguredAndTheHistoryTellsTheRealTimes plays each
// kind of call with an office's pace and checks every ring and talk is
// drawn from its range and the history reports exactly those times.
func TestSimCallsRingAndTalkAsConfiguredAndTheHistoryTellsTheRealTimes(t *testing.T) {
	t.Parallel()
	ring := sim.Span{Min: 5 * time.Second, Max: 15 * time.Second}
	talk := sim.Span{Min: 10 * time.Second, Max: 40 * time.Second}
	const step = 700 * time.Millisecond
	in := func(s sim.Span, d time.Duration) bool { return d >= s.Min && d <= s.Max }
	c := newCRM(t)
	var sl sleeps
	p := newPBX(t, c.srv.URL, func(cfg *sim.Config) {
		cfg.Ring, cfg.Talk, cfg.Sleep, cfg.Step = ring, talk, sl.sleep, step
	})
	history := func(callid string) url.Values {
		t.Helper()
		for _, f := range c.forms(callid) {
			if f.Get("cmd") == "history" {
				return f
			}
		}
		t.Fatalf("no history for %s", callid)
		return nil
	}
	// check wants the waits to be ring, talk (answered only) and a Step,
	// and the history of callid to say that ring and talk.
	check := func(kind, callid string, answered bool) {
		t.Helper()
		ds := sl.take()
		want := 3
		if !answered {
			want = 2
		}
		if len(ds) != want || !in(ring, ds[0]) || answered && !in(talk, ds[1]) || ds[len(ds)-1] != step {
			t.Fatalf("%s: waits %v, want ring in %v, talk in %v, step", kind, ds, ring, talk)
		}
		f := history(callid)
		wantTalk := "0"
		if answered {
			wantTalk = secs(ds[1])
		}
		if f.Get("duration") != wantTalk {
			t.Errorf("%s: history duration %q, want the %v talked (%s)", kind, f.Get("duration"), ds, wantTalk)
		}
		for _, r := range p.History() {
			if r.UID == callid && (r.Wait != atoi(secs(ds[0])) || strconv.Itoa(r.Duration) != wantTalk) {
				t.Errorf("%s: record %+v, want wait %s duration %s", kind, r, secs(ds[0]), wantTalk)
			}
		}
	}
	for i := 0; i < 5; i++ { // random draws: several rounds
		id, err := p.DirectCall(t.Context(), "andy", "79101234567")
		if err != nil {
			t.Fatal(err)
		}
		check("direct", id, true)
		if id, err = p.GroupCall(t.Context(), "sales", "", "79101234567"); err != nil {
			t.Fatal(err)
		}
		check("group", id, true)
		if id, err = p.MissedCall(t.Context(), "mike", "79101234567"); err != nil {
			t.Fatal(err)
		}
		check("missed", id, false)
		if history(id).Get("status") != "Missed" {
			t.Errorf("missed call's history %v", history(id))
		}
		if id, err = p.OutgoingCall(t.Context(), "daria", "79101234567"); err != nil {
			t.Fatal(err)
		}
		check("outgoing", id, true)

		first, second, err := p.Transfer(t.Context(), "andy", "mike", "79101234567")
		if err != nil {
			t.Fatal(err)
		}
		ds := sl.take() // ring 1, talk 1, ring 2 (andy still talking), talk 2, step
		if len(ds) != 5 || !in(ring, ds[0]) || !in(talk, ds[1]) || !in(ring, ds[2]) || !in(talk, ds[3]) || ds[4] != step {
			t.Fatalf("transfer: waits %v", ds)
		}
		if got, want := history(first).Get("duration"), secs(ds[1]+ds[2]); got != want {
			t.Errorf("transfer: first leg's duration %s, want %s", got, want)
		}
		if got, want := history(second).Get("duration"), secs(ds[3]); got != want {
			t.Errorf("transfer: second leg's duration %s, want %s", got, want)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// TestSimAnsweredCallsLinkARecordingTheSimulatorServes follows the history's
// link over HTTP, as a CRM page's audio player would.
func TestSimAnsweredCallsLinkARecordingTheSimulatorServes(t *testing.T) {
	t.Parallel()
	c := newCRM(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p := newPBX(t, c.srv.URL, func(cfg *sim.Config) { cfg.RecordingsURL = srv.URL + "/pbx/records/" })
	mux.Handle("/pbx/records/", p.Recordings())

	id, err := p.DirectCall(t.Context(), "andy", "79101234567")
	if err != nil {
		t.Fatal(err)
	}
	var link string
	for _, f := range c.forms(id) {
		if f.Get("cmd") == "history" {
			link = f.Get("link")
		}
	}
	if link != srv.URL+"/pbx/records/"+id+".wav" {
		t.Fatalf("link %q", link)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("GET %s: %d %q", link, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(body) < 44 || !bytes.Equal(body[:4], []byte("RIFF")) || !bytes.Equal(body[8:16], []byte("WAVEfmt ")) ||
		!bytes.Equal(body[36:40], []byte("data")) || int(le32(body[4:8])) != len(body)-8 || int(le32(body[40:44])) != len(body)-44 {
		t.Fatalf("not a valid WAV: % x…", body[:min(len(body), 44)])
	}
	if le32(body[24:28]) != 8000 || body[22] != 1 { // 8 kHz mono
		t.Errorf("format % x", body[20:36])
	}

	missed, err := p.MissedCall(t.Context(), "andy", "79101234567")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{missed + ".wav", "nosuchcall.wav", id + ".mp3", ""} {
		resp, err := http.Get(srv.URL + "/pbx/records/" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %q: %d, want 404", path, resp.StatusCode)
		}
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
