package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/tenant/file"
)

const crmTok = "crm-token-0123456789"

func acme(id string) *tenant.Tenant {
	return &tenant.Tenant{ID: id, Enabled: true, CRMTokens: []tenant.Secret{{Value: crmTok}}}
}

func open(t *testing.T, path string) *file.Store {
	t.Helper()
	s, err := file.Open(path, file.Config{Poll: 10 * time.Millisecond}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually waits up to 5 s for cond: a change is picked up by polling.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPutWritesAPrivateFileThatOpensAgain(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "tenants.json")
	s := open(t, path)
	ctx := context.Background()
	if err := s.Put(ctx, acme("acme.megapbx.ru")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, ok := s.Get("acme.megapbx.ru")
	if !ok || got.Created.IsZero() || got.Updated.IsZero() {
		t.Fatalf("Get after Put: %+v %v", got, ok)
	}
	again := open(t, path)
	if g, ok := again.Get("acme.megapbx.ru"); !ok || !g.CRMTokenOK(crmTok, time.Now()) || !g.Created.Equal(got.Created) {
		t.Errorf("reopened: %+v %v", g, ok)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tenants-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestAnotherProcessesChangeIsSeenByRun(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenants.json")
	node, cli := open(t, path), open(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	var mu sync.Mutex
	var disabled []string
	node.Watch(func(old, new *tenant.Tenant) {
		if old != nil && new != nil && old.Enabled && !new.Enabled {
			mu.Lock()
			disabled = append(disabled, new.ID)
			mu.Unlock()
		}
	})
	if err := cli.Create(ctx, acme("acme.megapbx.ru")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node sees the new tenant", func() bool { _, ok := node.Get("acme.megapbx.ru"); return ok })
	if _, err := cli.Update(ctx, "acme.megapbx.ru", func(t *tenant.Tenant) error { t.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node sees the disabling", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(disabled) == 1 && disabled[0] == "acme.megapbx.ru"
	})
	if err := cli.Delete(ctx, "acme.megapbx.ru"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node sees the deletion", func() bool { return node.Registry().Len() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestABrokenFileKeepsTheRegistry: a hand edit that does not parse or
// validate is refused and the tenants stay served.
func TestABrokenFileKeepsTheRegistry(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenants.json")
	s := open(t, path)
	if err := s.Put(context.Background(), acme("acme.megapbx.ru")); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"tenants": [`,
		`{"tenants": [{"id": "Bad/ID", "crm_tokens": [{"value": "crm-token-0123456789"}]}]}`,
		`{"tenants": [{"id": "a.ru", "crm_tokens": [{"value": "crm-token-0123456789"}]}, {"id": "a.ru", "crm_tokens": [{"value": "crm-token-0123456789"}]}]}`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err == nil {
			t.Errorf("Reload accepted %s", body)
		}
		if _, ok := s.Get("acme.megapbx.ru"); !ok || s.Registry().Len() != 1 {
			t.Errorf("registry changed after a broken file %s", body)
		}
		if _, err := file.Open(path, file.Config{}, zaptest.NewLogger(t)); err == nil || strings.Contains(err.Error(), crmTok) {
			t.Errorf("Open of a broken file: %v", err)
		}
	}
}

func TestCreateUpdateDeleteErrors(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "tenants.json"))
	ctx := context.Background()
	if err := s.Create(ctx, acme("acme.megapbx.ru")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, acme("acme.megapbx.ru")); !errors.Is(err, tenant.ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}
	if _, err := s.Update(ctx, "other.ru", func(*tenant.Tenant) error { return nil }); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("Update unknown: %v", err)
	}
	if err := s.Delete(ctx, "other.ru"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("Delete unknown: %v", err)
	}
	if _, err := s.Update(ctx, "acme.megapbx.ru", func(t *tenant.Tenant) error { t.CRMTokens = nil; return nil }); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("Update to an invalid tenant: %v", err)
	}
	if err := s.Put(ctx, &tenant.Tenant{ID: "x.ru"}); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("Put of an invalid tenant: %v", err)
	}
	if got, _ := s.Get("acme.megapbx.ru"); len(got.CRMTokens) != 1 {
		t.Error("a refused update changed the tenant")
	}
}

// TestConcurrentWritersLoseNoUpdate: two stores on one file (two
// processes, as the CLI beside a node) each add tenants at once; the file
// lock keeps every one.
func TestConcurrentWritersLoseNoUpdate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenants.json")
	a, b := open(t, path), open(t, path)
	var wg sync.WaitGroup
	for w, s := range []*file.Store{a, b} {
		wg.Go(func() {
			for i := range 20 {
				if err := s.Create(context.Background(), acme(fmt.Sprintf("w%d-%d.ru", w, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ts, err := open(t, path).List(context.Background())
	if err != nil || len(ts) != 40 {
		t.Fatalf("List: %d tenants, %v; want 40", len(ts), err)
	}
}
