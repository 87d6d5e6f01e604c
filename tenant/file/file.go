// Package file keeps the tenant registry in a JSON file, for the embedded
// single node: written atomically with mode 0600 (it holds secrets), and
// re-read when it changes on disk, so `callpop tenant …` run beside a
// serving node takes effect without a restart.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/tenant"
)

const (
	// DefaultPoll is how often Run looks at the file's modification time
	// and size: a change is served within about a second.
	DefaultPoll = time.Second
	// MaxFileSize bounds what a reload reads: 10,000 tenants take about
	// 10 MB.
	MaxFileSize = 64 << 20
)

// Config tunes a Store; zero values take the defaults.
type Config struct {
	Poll time.Duration    // DefaultPoll when zero
	Now  func() time.Time // time.Now when nil (tests)
}

// Store is the registry kept in one file. Its Get answers from memory.
type Store struct {
	path string
	cfg  Config
	log  *zap.Logger
	reg  *tenant.Registry

	mu    sync.Mutex // serialises this process's writes and reloads
	stamp stamp      // the file as last read or written; guarded by mu
}

// stamp is what Run compares to see a change: the file's modification
// time and size.
type stamp struct {
	mod  time.Time
	size int64
	ok   bool // the file existed
}

var _ tenant.Manager = (*Store)(nil)

// document is the file's shape.
type document struct {
	Tenants []*tenant.Tenant `json:"tenants"`
}

// Open reads the registry at path; a missing file is an empty registry,
// created by the first write.
func Open(path string, cfg Config, log *zap.Logger) (*Store, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{path: path, cfg: cfg, log: log.Named("tenants"), reg: tenant.NewRegistry()}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, st, err := s.read()
	if err != nil {
		return nil, err
	}
	s.reg.Replace(ts)
	s.stamp = st
	return s, nil
}

// Registry is the in-memory registry the store feeds.
func (s *Store) Registry() *tenant.Registry { return s.reg }

// Get answers from memory (tenant.Registry.Get).
func (s *Store) Get(id string) (*tenant.Tenant, bool) { return s.reg.Get(id) }

// Watch reports every change, made here or seen in the file.
func (s *Store) Watch(fn tenant.WatchFunc) (stop func()) { return s.reg.Watch(fn) }

// Close does nothing: Run ends with its context.
func (s *Store) Close() error { return nil }

// Run re-reads the file whenever its modification time or size changes,
// until ctx ends. A file that does not parse or validate is logged and the
// registry kept as it was.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := s.Reload(); err != nil {
			s.log.Error("tenants file not reloaded; the registry is kept as it was", zap.Error(err))
		}
	}
}

// Reload re-reads the file if it changed since last read or written.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := statFile(s.path)
	if err != nil || st == s.stamp {
		return err
	}
	ts, st, err := s.read()
	if err != nil {
		return err
	}
	s.stamp = st
	s.reg.Replace(ts)
	s.log.Info("tenants file reloaded", zap.Int("tenants", len(ts)))
	return nil
}

// List returns every tenant as the file holds it now.
func (s *Store) List(context.Context) ([]*tenant.Tenant, error) {
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s.reg.List(), nil
}

// Put stores t, replacing a tenant with its ID.
func (s *Store) Put(_ context.Context, t *tenant.Tenant) error {
	t = t.Clone()
	return s.edit(func(ts []*tenant.Tenant) ([]*tenant.Tenant, error) {
		if i := index(ts, t.ID); i >= 0 {
			if t.Created.IsZero() {
				t.Created = ts[i].Created
			}
			ts[i] = t
		} else {
			ts = append(ts, t)
		}
		return ts, t.Prepare(s.cfg.Now())
	})
}

// Create stores t if its ID is new, else returns tenant.ErrExists.
func (s *Store) Create(_ context.Context, t *tenant.Tenant) error {
	t = t.Clone()
	return s.edit(func(ts []*tenant.Tenant) ([]*tenant.Tenant, error) {
		if index(ts, t.ID) >= 0 {
			return nil, tenant.ErrExists
		}
		t.Created = time.Time{}
		return append(ts, t), t.Prepare(s.cfg.Now())
	})
}

// Update applies edit to a copy of tenant id, as the file holds it, and
// writes the result.
func (s *Store) Update(_ context.Context, id string, edit func(*tenant.Tenant) error) (*tenant.Tenant, error) {
	var out *tenant.Tenant
	err := s.edit(func(ts []*tenant.Tenant) ([]*tenant.Tenant, error) {
		i := index(ts, id)
		if i < 0 {
			return nil, tenant.ErrNotFound
		}
		t := ts[i].Clone()
		if err := edit(t); err != nil {
			return nil, err
		}
		if t.ID != id {
			return nil, fmt.Errorf("%w: id cannot change", tenant.ErrInvalid)
		}
		ts[i], out = t, t
		return ts, t.Prepare(s.cfg.Now())
	})
	return out, err
}

// Delete removes tenant id.
func (s *Store) Delete(_ context.Context, id string) error {
	return s.edit(func(ts []*tenant.Tenant) ([]*tenant.Tenant, error) {
		i := index(ts, id)
		if i < 0 {
			return nil, tenant.ErrNotFound
		}
		return slices.Delete(ts, i, i+1), nil
	})
}

func index(ts []*tenant.Tenant, id string) int {
	return slices.IndexFunc(ts, func(t *tenant.Tenant) bool { return t.ID == id })
}

// edit is one read-modify-write of the file, under this process's mutex
// and an exclusive lock on path+".lock" that other processes (the CLI
// beside a node) take too.
func (s *Store) edit(change func([]*tenant.Tenant) ([]*tenant.Tenant, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("tenants file: %w", err)
	}
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	ts, _, err := s.read()
	if err != nil {
		return err
	}
	if ts, err = change(ts); err != nil {
		return err
	}
	slices.SortFunc(ts, func(a, b *tenant.Tenant) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.MarshalIndent(document{Tenants: ts}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.path, append(b, '\n')); err != nil {
		return err
	}
	st, err := statFile(s.path)
	if err != nil {
		return err
	}
	s.stamp = st
	s.reg.Replace(ts)
	return nil
}

// read parses and validates the whole file; guarded by mu.
func (s *Store) read() ([]*tenant.Tenant, stamp, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, stamp{}, nil
	}
	if err != nil {
		return nil, stamp{}, fmt.Errorf("tenants file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, fmt.Errorf("tenants file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, stamp{}, fmt.Errorf("tenants file: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, stamp{}, fmt.Errorf("tenants file: larger than %d bytes", MaxFileSize)
	}
	var doc document
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, stamp{}, fmt.Errorf("tenants file %s: %w", s.path, err)
		}
	}
	seen := make(map[string]bool, len(doc.Tenants))
	for i, t := range doc.Tenants {
		if t == nil {
			return nil, stamp{}, fmt.Errorf("tenants file %s: tenant %d is null", s.path, i)
		}
		if err := t.Validate(); err != nil {
			return nil, stamp{}, fmt.Errorf("tenants file %s: tenant %d: %w", s.path, i, err)
		}
		if seen[t.ID] {
			return nil, stamp{}, fmt.Errorf("tenants file %s: tenant %q twice", s.path, t.ID)
		}
		seen[t.ID] = true
	}
	return doc.Tenants, stamp{mod: fi.ModTime(), size: fi.Size(), ok: true}, nil
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return stamp{}, nil
	}
	if err != nil {
		return stamp{}, fmt.Errorf("tenants file: %w", err)
	}
	return stamp{mod: fi.ModTime(), size: fi.Size(), ok: true}, nil
}

// writeAtomic replaces path with b: a temporary file in the same
// directory, mode 0600, synced, then renamed over path, so a reader sees
// the old file or the new one, never half of one.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tenants-*.tmp") // CreateTemp makes it 0600
	if err != nil {
		return fmt.Errorf("tenants file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("tenants file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("tenants file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tenants file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tenants file: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // the rename itself survives a crash
		_ = d.Sync()
		d.Close()
	}
	return nil
}
