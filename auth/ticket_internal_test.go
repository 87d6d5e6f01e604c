package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
)

// failingStore is a broker whose ticket store is down.
type failingStore struct{}

func (failingStore) PutTicket(context.Context, string, []byte, time.Duration) error {
	return event.ErrUnavailable
}
func (failingStore) TakeTicket(context.Context, string) ([]byte, error) {
	return nil, event.ErrUnavailable
}

func TestTicketStandsForItsTokenOnceAndUntilTheTokenExpires(t *testing.T) {
	t.Parallel()
	store := memory.New(memory.Config{})
	tk := NewTickets(store, 0)
	now := time.Now()
	tk.now = func() time.Time { return now }
	ctx := context.Background()
	exp := now.Add(time.Minute)

	ticket, err := tk.Issue(ctx, Identity{User: "Andy@Acme", Key: "andy", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	// The store keeps the ticket's hash: what it holds opens nothing.
	if _, err := store.TakeTicket(ctx, ticket); !errors.Is(err, event.ErrNoTicket) {
		t.Errorf("the store holds the ticket itself (err %v), want only its hash", err)
	}
	id, err := tk.Redeem(ctx, ticket)
	if err != nil || id.User != "Andy@Acme" || id.Key != "andy" || !id.Expires.Equal(exp.Truncate(time.Millisecond)) {
		t.Fatalf("Redeem = %+v, %v; want andy until %v", id, err, exp)
	}
	if _, err := tk.Redeem(ctx, ticket); !errors.Is(err, ErrBadToken) {
		t.Errorf("second Redeem = %v, want ErrBadToken", err)
	}

	// The socket must not outlive the token: a ticket of a token that has
	// expired since is refused even though the ticket has not.
	ticket, err = tk.Issue(ctx, Identity{User: "andy", Key: "andy", Expires: now.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if _, err := tk.Redeem(ctx, ticket); !errors.Is(err, ErrBadToken) {
		t.Errorf("Redeem after the token's exp = %v, want ErrBadToken", err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 44)} {
		if _, err := tk.Redeem(ctx, bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Redeem(%q) = %v, want ErrBadToken", bad, err)
		}
	}
}

func TestSocketUpgradeWithTheStoreDownAnswers503NotUnauthorized(t *testing.T) {
	t.Parallel()
	j, err := NewJWT(strings.Repeat("s", MinSecretLen))
	if err != nil {
		t.Fatal(err)
	}
	tk := NewTickets(failingStore{}, 0)
	if _, err := tk.Issue(context.Background(), Identity{User: "andy", Key: "andy", Expires: time.Now().Add(time.Hour)}); !errors.Is(err, event.ErrUnavailable) {
		t.Errorf("Issue with the store down = %v, want ErrUnavailable", err)
	}
	h := RequireSocketUser(j, tk, SocketOptions{}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("handler reached")
	}))
	for target, want := range map[string]int{
		"/ws?ticket=" + strings.Repeat("A", 43): http.StatusServiceUnavailable,
		"/ws":                                   http.StatusUnauthorized,
		"/ws?token=whatever":                    http.StatusUnauthorized, // legacy off: not even looked at
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", target, w.Code, want)
		}
	}
}
