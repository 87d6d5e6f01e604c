package forward_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/forward"
)

func openFile(tb testing.TB, dir string, cfg forward.FileConfig) *forward.FileQueue {
	tb.Helper()
	q, err := forward.OpenFileQueue(dir, cfg, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = q.Close() })
	return q
}

// journalOps returns the "op" of every journal line.
func journalOps(tb testing.TB, dir string) []string {
	tb.Helper()
	f, err := os.Open(filepath.Join(dir, forward.JournalFile))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var ops []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct{ Op string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		ops = append(ops, l.Op)
	}
	return ops
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

func push(tb testing.TB, q forward.Queue, keys ...string) {
	tb.Helper()
	for _, k := range keys {
		if _, err := q.Push(context.Background(), k, []byte(`{"key":"`+k+`"}`)); err != nil {
			tb.Fatal(err)
		}
	}
}

func next(tb testing.TB, q forward.Queue) forward.Entry {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	e, err := q.Next(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestFileJournalIsCompactedOnceEverythingIsAcknowledged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openFile(t, dir, forward.FileConfig{CompactAfter: 1})
	c := newCRM(t, nil)
	f := newForwarder(t, testConfig(c.URL()), q)
	ids := callids("compact", 12)
	enqueue(t, f, ids...)
	before, err := os.Stat(filepath.Join(dir, forward.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, f)
	waitFor(t, "every record at the CRM", func() bool { return len(c.accepted()) == len(ids) })
	waitFor(t, "an empty queue", func() bool { return stats(t, q).Queued == 0 })
	r.stop(t)

	ops := journalOps(t, dir)
	if count(ops, "push") != 0 || count(ops, "ack") != 0 || count(ops, "seen") != len(ids) || ops[0] != "seq" {
		t.Errorf("journal after compaction: %q; want the seq and %d dedupe marks only", ops, len(ids))
	}
	after, err := os.Stat(filepath.Join(dir, forward.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() >= before.Size() {
		t.Errorf("journal is %d bytes after compaction, %d before", after.Size(), before.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, forward.JournalFile+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary journal left behind: %v", err)
	}

	// Reopened: empty, dedupe marks kept, ids not reused.
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openFile(t, dir, forward.FileConfig{CompactAfter: 1})
	if s := stats(t, q); s.Queued != 0 {
		t.Errorf("reopened queue holds %d", s.Queued)
	}
	added, err := q.Push(context.Background(), ids[0]+":andy", []byte(`{}`))
	if err != nil || added {
		t.Errorf("Push of a delivered key after compaction and reopen = %v, %v; want not added", added, err)
	}
	push(t, q, "fresh")
	if e := next(t, q); e.ID != "13" || e.Key != "fresh" {
		t.Errorf("next entry %+v, want id 13", e)
	}
}

func TestFileQueueReplaysWaitingRecordsAndTheirBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openFile(t, dir, forward.FileConfig{CompactAfter: 1})
	push(t, q, "k1", "k2", "k3", "k4", "k5")
	for range 3 {
		if err := q.Ack(context.Background(), next(t, q)); err != nil {
			t.Fatal(err)
		}
	}
	head := next(t, q)
	for range 2 {
		if err := q.Retry(context.Background(), head, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Push(context.Background(), "late", []byte(`{}`)); err == nil {
		t.Error("Push after Close succeeded")
	}

	q = openFile(t, dir, forward.FileConfig{CompactAfter: 1})
	s := stats(t, q)
	if s.Queued != 2 || s.Oldest.IsZero() {
		t.Errorf("stats after reopen %+v, want 2 queued", s)
	}
	e := next(t, q)
	if e.Key != "k4" || e.Attempts != 2 || string(e.Data) != `{"key":"k4"}` {
		t.Errorf("head after reopen %+v, want k4 after 2 attempts", e)
	}

	// A retry in the future holds the head back: Next waits.
	if err := q.Retry(context.Background(), e, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if e, err := q.Next(ctx); err == nil {
		t.Errorf("Next returned %+v while the head is held back", e)
	}
}

func TestFileQueueCutsATornLastLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openFile(t, dir, forward.FileConfig{})
	push(t, q, "a", "b")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, forward.JournalFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(good, `{"op":"push","seq":3,"key":"c","da`...), 0o600); err != nil {
		t.Fatal(err)
	}

	q = openFile(t, dir, forward.FileConfig{})
	if s := stats(t, q); s.Queued != 2 {
		t.Errorf("queued %d after a torn line, want 2", s.Queued)
	}
	push(t, q, "c")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openFile(t, dir, forward.FileConfig{})
	if s := stats(t, q); s.Queued != 3 {
		t.Errorf("queued %d after appending past a cut, want 3", s.Queued)
	}
}

func TestFileQueueRefusesACorruptJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openFile(t, dir, forward.FileConfig{})
	push(t, q, "a")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, forward.JournalFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append([]byte("garbage\n"), good...), 0o600); err != nil {
		t.Fatal(err)
	}
	if q, err := forward.OpenFileQueue(dir, forward.FileConfig{}, nil); err == nil {
		_ = q.Close()
		t.Fatal("a corrupt journal was opened")
	} else if !strings.Contains(err.Error(), "line 1") {
		t.Errorf("error %q does not name the line", err)
	}
}

func TestFileQueueDirectoryIsLockedWhileOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openFile(t, dir, forward.FileConfig{})
	if q2, err := forward.OpenFileQueue(dir, forward.FileConfig{}, nil); err == nil {
		_ = q2.Close()
		t.Fatal("a second queue opened the same directory")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	openFile(t, dir, forward.FileConfig{})
}

func TestFileDeadLettersSurviveAReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openFile(t, dir, forward.FileConfig{})
	push(t, q, "a", "b")
	if err := q.Bury(context.Background(), next(t, q), "CRM answered 400"); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash tore the next dead letter.
	path := filepath.Join(dir, forward.DeadFile)
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteString(`{"id":"9","ke`); err != nil {
		t.Fatal(err)
	}
	_ = fd.Close()

	q = openFile(t, dir, forward.FileConfig{})
	if s := stats(t, q); s.Queued != 1 || s.Dead != 1 {
		t.Errorf("stats %+v, want 1 queued, 1 dead", s)
	}
	if err := q.Bury(context.Background(), next(t, q), "CRM answered 404"); err != nil {
		t.Fatal(err)
	}
	dead, err := q.DeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || dead[0].Key != "a" || dead[1].Key != "b" || dead[1].Reason != "CRM answered 404" ||
		string(dead[0].Data) != `{"key":"a"}` {
		t.Errorf("dead letters %+v", dead)
	}
}

func TestFileQueueRefusesDataThatIsNotJSON(t *testing.T) {
	t.Parallel()
	q := openFile(t, t.TempDir(), forward.FileConfig{})
	if _, err := q.Push(context.Background(), "k", []byte("not json\n")); err == nil {
		t.Error("Push accepted a line break into the journal")
	}
}
