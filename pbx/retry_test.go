package pbx_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/callpop/callpop/pbx"
)

func TestReadsAreRetriedOn5xxAndWritesNever(t *testing.T) {
	t.Parallel()
	for name, call := range commands("andy") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, n := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error":"Internal error"}`, http.StatusServiceUnavailable)
			})
			c := newClient(t, srv.URL, pbx.Config{Retries: 3})
			err := call(t.Context(), c)
			var e *pbx.Error
			if !errors.Is(err, pbx.ErrUnavailable) || !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Message != "Internal error" {
				t.Fatalf("err = %v", err)
			}
			want := int64(1)
			if pbx.IsReadOnly(name) {
				want = 4
			}
			if got := n.Load(); got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
		})
	}
}

func TestReadSucceedsAfterATransient5xx(t *testing.T) {
	t.Parallel()
	srv, n := countingServerN(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n < 3 { // only the third attempt gets through
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, `[{"name":"andy"}]`)
	})
	c := newClient(t, srv.URL, pbx.Config{}) // DefaultRetries: three attempts
	as, err := c.Accounts(t.Context())
	if err != nil || len(as) != 1 || as[0].Name != "andy" {
		t.Fatalf("Accounts = %+v, %v", as, err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
}

func TestRefusalsAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound} {
		srv, n := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
		c := newClient(t, srv.URL, pbx.Config{})
		_, err := c.Accounts(t.Context())
		var e *pbx.Error
		if !errors.As(err, &e) || e.Status != status || e.Message != http.StatusText(status) || errors.Is(err, pbx.ErrUnavailable) {
			t.Errorf("status %d: err = %v", status, err)
		}
		if got := n.Load(); got != 1 {
			t.Errorf("status %d: %d requests, want 1", status, got)
		}
	}
}

func TestNegativeRetriesMeansOneAttempt(t *testing.T) {
	t.Parallel()
	srv, n := countingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	c := newClient(t, srv.URL, pbx.Config{Retries: -1})
	if _, err := c.Accounts(t.Context()); !errors.Is(err, pbx.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestUnreachablePBXIsUnavailable(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := newClient(t, url, pbx.Config{})
	for name, call := range commands("andy") {
		err := call(t.Context(), c)
		var e *pbx.Error
		if !errors.Is(err, pbx.ErrUnavailable) || errors.As(err, &e) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
