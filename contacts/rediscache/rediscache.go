// Package rediscache keeps contact answers in Redis, so every callpop node
// of a cluster reuses what one node learnt from the CRM.
package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
)

// KeyPrefix starts every key: "callpop:contact:79101234567".
const KeyPrefix = "callpop:contact:"

// Cache is a contacts.Cache in Redis: one string key per number, a JSON value
// ({"known":true,"name":"…","responsible":"…"}), expiring by Redis TTL. Safe for
// concurrent use.
//
// go-redis honours a context's deadline on the socket only with
// Options.ContextTimeoutEnabled; without it a stalled Redis holds a look-up
// for the client's ReadTimeout. contacts.CRM gives up waiting at its own
// deadline either way, so use a client with ContextTimeoutEnabled to keep
// look-ups from piling up behind a stalled Redis.
type Cache struct {
	rdb goredis.UniversalClient
}

var _ contacts.Cache = (*Cache)(nil)

// New returns a Cache on rdb; the caller keeps owning (and closes) rdb.
func New(rdb goredis.UniversalClient) *Cache { return &Cache{rdb: rdb} }

// value is the stored JSON.
type value struct {
	Known       bool   `json:"known"`
	Name        string `json:"name,omitempty"`
	Responsible string `json:"responsible,omitempty"`
}

// Get returns the answer kept for phone. A value it cannot read is an error
// (so the CRM is asked, and its answer then overwrites the value).
func (c *Cache) Get(ctx context.Context, phone string) (contacts.Answer, bool, error) {
	b, err := c.rdb.Get(ctx, KeyPrefix+phone).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		return contacts.Answer{}, false, nil
	case err != nil:
		return contacts.Answer{}, false, fmt.Errorf("rediscache: %w", err)
	}
	var v value
	if err := json.Unmarshal(b, &v); err != nil {
		return contacts.Answer{}, false, fmt.Errorf("rediscache: bad value: %w", err)
	}
	a := contacts.Answer{Known: v.Known}
	if v.Known {
		a.Contact = event.Contact{Name: v.Name, Responsible: v.Responsible}
	}
	return a, true, nil
}

// Set keeps a for phone for ttl (a ttl of zero or less deletes the key).
func (c *Cache) Set(ctx context.Context, phone string, a contacts.Answer, ttl time.Duration) error {
	key := KeyPrefix + phone
	if ttl <= 0 {
		if err := c.rdb.Del(ctx, key).Err(); err != nil {
			return fmt.Errorf("rediscache: %w", err)
		}
		return nil
	}
	v := value{Known: a.Known}
	if a.Known {
		v.Name, v.Responsible = a.Contact.Name, a.Contact.Responsible
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("rediscache: %w", err)
	}
	if err := c.rdb.Set(ctx, key, b, ttl).Err(); err != nil {
		return fmt.Errorf("rediscache: %w", err)
	}
	return nil
}
