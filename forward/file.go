package forward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultCompactAfter is how many records must have been acknowledged (or
// buried) since the journal was last rewritten before it is rewritten again,
// and no fewer than the records still waiting: the rewrite copies only
// those and the dedupe marks, so its cost stays a fraction of the appends.
const DefaultCompactAfter = 1000

// The files of a FileQueue's directory.
const (
	JournalFile = "forward.journal" // the queue: JSON lines, appended and fsynced
	DeadFile    = "forward.dead"    // the dead letters: JSON lines, appended and fsynced
	lockFile    = "forward.lock"    // held (flock) while a FileQueue is open
)

// FileConfig configures a FileQueue; zero values take the defaults.
type FileConfig struct {
	// DedupeWindow: 0 means DefaultDedupeWindow.
	DedupeWindow time.Duration
	// CompactAfter: 0 means DefaultCompactAfter.
	CompactAfter int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// FileQueue is the Queue of the embedded single node: a journal of JSON
// lines in a directory, one line per change, each written and fsynced before
// the change is reported done:
//
//	{"op":"push","seq":7,"key":"B10D-1511:andy","at":"…","data":{…the Item…}}
//	{"op":"retry","seq":7,"attempts":1,"at":"…"}   next attempt not before at
//	{"op":"ack","seq":7}                           delivered
//	{"op":"dead","seq":7}                          buried (its data is in forward.dead)
//	{"op":"seen","key":"…","at":"…"}               a dedupe mark kept by compaction
//	{"op":"seq","seq":7}                           the last seq, kept by compaction
//
// Opening the directory replays the journal: the pushes without an ack or
// dead line are the queue (sent again: at least once), the keys pushed within
// the dedupe window are the dedupe set. A line torn by a crash at the end of
// the journal is cut off (its Push never returned nil). The journal is
// rewritten (to a temporary file, fsynced, renamed) once enough records are
// acknowledged; when all are, it holds only the dedupe marks.
//
// One process at a time: the directory is locked while the queue is open.
// One consumer at a time: a second Forwarder.Run on the same FileQueue would
// send every record twice.
type FileQueue struct {
	dir  string
	cfg  FileConfig
	log  *zap.Logger
	lock *os.File

	mu       sync.Mutex
	journal  *os.File // guarded by mu
	size     int64    // journal bytes known good; guarded by mu
	dead     *os.File // guarded by mu
	deadSize int64    // dead-letter bytes known good; guarded by mu
	deadN    int      // guarded by mu
	pending  []fileEntry
	seen     map[string]time.Time // key → pushed at; guarded by mu
	lastSeq  uint64               // guarded by mu
	acked    int                  // records acked or buried since the last rewrite; guarded by mu
	retry    fileRetry            // the head's back-off; guarded by mu
	wake     chan struct{}        // closed when an entry is pushed or the queue closes; guarded by mu
	closed   bool                 // guarded by mu
	brokenBy error                // a journal left unrepairable; guarded by mu
}

type fileEntry struct {
	seq  uint64
	key  string
	at   time.Time
	data json.RawMessage
}

type fileRetry struct {
	seq      uint64
	attempts int
	at       time.Time
}

// journalLine is one line of the journal.
type journalLine struct {
	Op       string          `json:"op"`
	Seq      uint64          `json:"seq,omitempty"`
	Key      string          `json:"key,omitempty"`
	At       time.Time       `json:"at,omitzero"`
	Attempts int             `json:"attempts,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// deadLine is one line of the dead-letter file.
type deadLine struct {
	ID       string          `json:"id"`
	Key      string          `json:"key"`
	Enqueued time.Time       `json:"enqueued"`
	Buried   time.Time       `json:"buried"`
	Reason   string          `json:"reason"`
	Data     json.RawMessage `json:"data"`
}

var _ Queue = (*FileQueue)(nil)

// OpenFileQueue opens (creating it if need be) the queue in dir and replays
// its journal. It fails when another process has the directory open.
func OpenFileQueue(dir string, cfg FileConfig, log *zap.Logger) (_ *FileQueue, err error) {
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.CompactAfter <= 0 {
		cfg.CompactAfter = DefaultCompactAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	q := &FileQueue{dir: dir, cfg: cfg, log: log.Named("forward"), seen: map[string]time.Time{}, wake: make(chan struct{})}
	defer func() {
		if err != nil {
			q.closeFiles()
		}
	}()
	if q.lock, err = os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if err := flock(q.lock); err != nil {
		return nil, fmt.Errorf("forward: %s is in use by another process: %w", dir, err)
	}
	if q.journal, err = os.OpenFile(filepath.Join(dir, JournalFile), os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if err := q.replay(); err != nil {
		return nil, err
	}
	if q.dead, err = os.OpenFile(filepath.Join(dir, DeadFile), os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if q.deadN, q.deadSize, err = scanDead(q.dead); err != nil {
		return nil, fmt.Errorf("forward: %s: %w", DeadFile, err)
	}
	q.maybeCompact()
	q.log.Info("forward queue opened", zap.String("dir", dir), zap.Int("queued", len(q.pending)),
		zap.Int("dedupe_keys", len(q.seen)), zap.Int("dead_letters", q.deadN))
	return q, nil
}

// replay reads the journal from the start, rebuilding the queue, the dedupe
// set and the retry state, and cuts a torn last line off.
func (q *FileQueue) replay() error {
	path := filepath.Join(q.dir, JournalFile)
	r := bufio.NewReader(q.journal)
	var off int64
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				q.log.Warn("cutting a torn line off the end of the journal", zap.String("path", path),
					zap.Int("line", n), zap.Int("bytes", len(line)))
				if err := q.journal.Truncate(off); err != nil {
					return fmt.Errorf("forward: %s: %w", path, err)
				}
				if err := q.journal.Sync(); err != nil {
					return fmt.Errorf("forward: %s: %w", path, err)
				}
			}
			break
		}
		if err != nil {
			return fmt.Errorf("forward: %s: %w", path, err)
		}
		off += int64(len(line))
		var l journalLine
		if err := json.Unmarshal(line, &l); err != nil {
			return fmt.Errorf("forward: %s line %d is corrupt (move the directory aside to start empty): %w", path, n, err)
		}
		q.apply(l)
	}
	q.size = off
	if _, err := q.journal.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("forward: %s: %w", path, err)
	}
	now := q.cfg.Now()
	for k, at := range q.seen {
		if now.Sub(at) >= q.cfg.DedupeWindow {
			delete(q.seen, k)
		}
	}
	return nil
}

// apply replays one journal line.
func (q *FileQueue) apply(l journalLine) {
	q.lastSeq = max(q.lastSeq, l.Seq)
	switch l.Op {
	case "push":
		q.pending = append(q.pending, fileEntry{seq: l.Seq, key: l.Key, at: l.At, data: l.Data})
		q.seen[l.Key] = l.At
	case "seen":
		q.seen[l.Key] = l.At
	case "ack", "dead":
		q.remove(l.Seq)
	case "retry":
		q.retry = fileRetry{seq: l.Seq, attempts: l.Attempts, at: l.At}
	}
}

// remove drops seq from the queue; guarded by mu.
func (q *FileQueue) remove(seq uint64) bool {
	i := slices.IndexFunc(q.pending, func(e fileEntry) bool { return e.seq == seq })
	if i < 0 {
		return false
	}
	q.pending = slices.Delete(q.pending, i, i+1)
	if q.retry.seq == seq {
		q.retry = fileRetry{}
	}
	q.acked++
	return true
}

// append writes l to the journal and fsyncs it; guarded by mu. On failure it
// cuts the journal back to its last good size, so a half-written line never
// precedes the next one.
func (q *FileQueue) append(l journalLine) error {
	if q.brokenBy != nil {
		return fmt.Errorf("forward: journal unusable: %w", q.brokenBy)
	}
	b, err := marshal(l)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	b = append(b, '\n')
	n, err := q.journal.Write(b)
	if err == nil {
		err = q.journal.Sync()
	}
	if err != nil {
		if terr := q.journal.Truncate(q.size); terr != nil {
			q.brokenBy = terr
		} else if _, serr := q.journal.Seek(q.size, io.SeekStart); serr != nil {
			q.brokenBy = serr
		}
		return fmt.Errorf("forward: journal: %w", err)
	}
	q.size += int64(n)
	return nil
}

func (q *FileQueue) usable() error {
	if q.closed {
		return ErrClosed
	}
	return nil
}

// Push implements Queue. data must be JSON (an Item); it is stored as is in
// the journal line.
func (q *FileQueue) Push(ctx context.Context, key string, data []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !json.Valid(data) {
		return false, errors.New("forward: file queue data must be JSON")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(); err != nil {
		return false, err
	}
	now := q.cfg.Now()
	if at, ok := q.seen[key]; ok && now.Sub(at) < q.cfg.DedupeWindow {
		return false, nil
	}
	e := fileEntry{seq: q.lastSeq + 1, key: key, at: now, data: slices.Clone(data)}
	if err := q.append(journalLine{Op: "push", Seq: e.seq, Key: key, At: now, Data: e.data}); err != nil {
		return false, err
	}
	q.lastSeq = e.seq
	q.pending = append(q.pending, e)
	q.seen[key] = now
	close(q.wake)
	q.wake = make(chan struct{})
	return true, nil
}

// Next implements Queue.
func (q *FileQueue) Next(ctx context.Context) (Entry, error) {
	for {
		q.mu.Lock()
		if err := q.usable(); err != nil {
			q.mu.Unlock()
			return Entry{}, err
		}
		wake, hold := q.wake, time.Duration(0)
		if len(q.pending) > 0 {
			h := q.pending[0]
			e := Entry{ID: strconv.FormatUint(h.seq, 10), Key: h.key, Data: slices.Clone(h.data), Enqueued: h.at}
			if q.retry.seq == h.seq {
				e.Attempts = q.retry.attempts
				hold = q.retry.at.Sub(q.cfg.Now())
			}
			if hold <= 0 {
				q.mu.Unlock()
				return e, nil
			}
		}
		q.mu.Unlock()
		if err := waitWake(ctx, wake, hold); err != nil {
			return Entry{}, err
		}
	}
}

// waitWake waits until wake is closed, hold passes (when positive), or ctx
// ends.
func waitWake(ctx context.Context, wake <-chan struct{}, hold time.Duration) error {
	var timer <-chan time.Time
	if hold > 0 {
		t := time.NewTimer(hold)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-timer:
	}
	return nil
}

// Ack implements Queue.
func (q *FileQueue) Ack(ctx context.Context, e Entry) error {
	return q.finish(e, "ack", nil)
}

// Bury implements Queue. The dead letters are the lines of forward.dead
// (deadLine: id, key, enqueued, buried, reason, data), kept until an
// operator moves the file away.
func (q *FileQueue) Bury(ctx context.Context, e Entry, reason string) error {
	return q.finish(e, "dead", func(h fileEntry) error {
		b, err := marshal(deadLine{ID: e.ID, Key: h.key, Enqueued: h.at, Buried: q.cfg.Now(), Reason: reason, Data: h.data})
		if err != nil {
			return fmt.Errorf("forward: %w", err)
		}
		n, err := q.dead.WriteAt(append(b, '\n'), q.deadSize)
		if err == nil {
			err = q.dead.Sync()
		}
		if err != nil {
			_ = q.dead.Truncate(q.deadSize) // the next line must not follow a torn one
			return fmt.Errorf("forward: %s: %w", DeadFile, err)
		}
		q.deadSize += int64(n)
		q.deadN++
		return nil
	})
}

// finish removes e with a journal line op, after before (if any) succeeded.
func (q *FileQueue) finish(e Entry, op string, before func(fileEntry) error) error {
	seq, err := strconv.ParseUint(e.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("forward: no entry %q", e.ID)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(); err != nil {
		return err
	}
	i := slices.IndexFunc(q.pending, func(p fileEntry) bool { return p.seq == seq })
	if i < 0 {
		return nil
	}
	if before != nil {
		if err := before(q.pending[i]); err != nil {
			return err
		}
	}
	if err := q.append(journalLine{Op: op, Seq: seq}); err != nil {
		return err
	}
	q.remove(seq)
	q.maybeCompact()
	return nil
}

// Retry implements Queue.
func (q *FileQueue) Retry(ctx context.Context, e Entry, at time.Time) error {
	seq, err := strconv.ParseUint(e.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("forward: no entry %q", e.ID)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(); err != nil {
		return err
	}
	if !slices.ContainsFunc(q.pending, func(p fileEntry) bool { return p.seq == seq }) {
		return nil
	}
	r := fileRetry{seq: seq, attempts: 1, at: at}
	if q.retry.seq == seq {
		r.attempts = q.retry.attempts + 1
	}
	if err := q.append(journalLine{Op: "retry", Seq: seq, Attempts: r.attempts, At: at}); err != nil {
		return err
	}
	q.retry = r
	return nil
}

// Stats implements Queue.
func (q *FileQueue) Stats(ctx context.Context) (Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(); err != nil {
		return Stats{}, err
	}
	s := Stats{Queued: len(q.pending), Dead: q.deadN}
	if len(q.pending) > 0 {
		s.Oldest = q.pending[0].at
	}
	return s, nil
}

// DeadLetters returns up to limit dead letters, oldest first.
func (q *FileQueue) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(q.dir, DeadFile))
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	defer f.Close()
	var out []DeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for len(out) < limit && sc.Scan() {
		var l deadLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a torn last line
		}
		out = append(out, DeadLetter{
			Entry:  Entry{ID: l.ID, Key: l.Key, Data: l.Data, Enqueued: l.Enqueued},
			Reason: l.Reason, Buried: l.Buried,
		})
	}
	return out, sc.Err()
}

// Close closes the files and unlocks the directory; a Next waiting returns
// ErrClosed. It is safe to call more than once.
func (q *FileQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	close(q.wake)
	return q.closeFiles()
}

func (q *FileQueue) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{q.journal, q.dead, q.lock} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// maybeCompact rewrites the journal when enough records were acknowledged;
// guarded by mu. A failed rewrite leaves the old journal in place.
func (q *FileQueue) maybeCompact() {
	if q.acked < q.cfg.CompactAfter || q.acked < len(q.pending) || q.brokenBy != nil {
		return
	}
	if err := q.compact(); err != nil {
		q.log.Error("journal compaction failed; keeping the journal as it is", zap.Error(err))
	}
}

// compact writes the journal anew: the last seq, the dedupe marks still in
// the window, the waiting records and the head's retry state; guarded by mu.
func (q *FileQueue) compact() error {
	now := q.cfg.Now()
	pendingKeys := map[string]bool{}
	for _, e := range q.pending {
		pendingKeys[e.key] = true
	}
	type mark struct {
		key string
		at  time.Time
	}
	var marks []mark
	for k, at := range q.seen {
		switch {
		case now.Sub(at) >= q.cfg.DedupeWindow:
			delete(q.seen, k)
		case !pendingKeys[k]:
			marks = append(marks, mark{k, at})
		}
	}
	slices.SortFunc(marks, func(a, b mark) int { return a.at.Compare(b.at) })

	var buf bytes.Buffer
	add := func(l journalLine) error {
		b, err := marshal(l)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		return nil
	}
	lines := []journalLine{{Op: "seq", Seq: q.lastSeq}}
	for _, m := range marks {
		lines = append(lines, journalLine{Op: "seen", Key: m.key, At: m.at})
	}
	for _, e := range q.pending {
		lines = append(lines, journalLine{Op: "push", Seq: e.seq, Key: e.key, At: e.at, Data: e.data})
	}
	if q.retry.seq != 0 {
		lines = append(lines, journalLine{Op: "retry", Seq: q.retry.seq, Attempts: q.retry.attempts, At: q.retry.at})
	}
	for _, l := range lines {
		if err := add(l); err != nil {
			return err
		}
	}

	path := filepath.Join(q.dir, JournalFile)
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	// From here the new journal is the journal: reopen it for appends.
	_ = q.journal.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err == nil {
		_, err = f.Seek(int64(buf.Len()), io.SeekStart)
	}
	if err != nil {
		q.brokenBy = err
		return err
	}
	q.journal, q.size, q.acked = f, int64(buf.Len()), 0
	if err := syncDir(q.dir); err != nil {
		q.log.Warn("fsync of the data directory failed", zap.Error(err))
	}
	q.log.Debug("journal compacted", zap.Int("queued", len(q.pending)), zap.Int("dedupe_keys", len(marks)),
		zap.Int("bytes", buf.Len()))
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// scanDead counts the complete lines of the dead-letter file and returns
// the size up to the last of them, cutting a line torn by a crash off.
func scanDead(f *os.File) (lines int, size int64, err error) {
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				if err := f.Truncate(size); err != nil {
					return 0, 0, err
				}
			}
			return lines, size, nil
		}
		if err != nil {
			return 0, 0, err
		}
		lines++
		size += int64(len(line))
	}
}
