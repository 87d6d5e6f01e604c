package tenant

import (
	"context"
	"errors"
	"time"
)

// ErrExists is returned when a tenant is created with an ID already taken.
var ErrExists = errors.New("tenant: already exists")

// Manager is a Store with the edits the CLI and the admin API make: each is
// atomic against other writers, on this node or another. Both stores
// implement it.
type Manager interface {
	Store
	Watcher
	// Create stores t if its ID is new, else returns ErrExists.
	Create(ctx context.Context, t *Tenant) error
	// Update applies edit to a copy of the stored tenant id and stores the
	// result; an error from edit stops it and is returned as is. It returns
	// ErrNotFound for an unknown id.
	Update(ctx context.Context, id string, edit func(*Tenant) error) (*Tenant, error)
	// Close stops watching for changes.
	Close() error
}

// Prepare validates t and stamps it before a store writes it: Updated is
// now, Created is now for a new tenant. Times are UTC without a monotonic
// reading, as they come back from JSON.
func (t *Tenant) Prepare(now time.Time) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now = now.UTC().Round(0)
	if t.Created.IsZero() {
		t.Created = now
	}
	t.Created = t.Created.UTC()
	t.Updated = now
	return nil
}
