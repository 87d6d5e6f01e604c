package auth_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/callpop/callpop/auth"
)

func TestTokenEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		expected, got string
		want          bool
	}{
		{"EqualTokensMatch", "76fsd7tfs-secret", "76fsd7tfs-secret", true},
		{"DifferentTokensDoNotMatch", "76fsd7tfs-secret", "76fsd7tfs-secreT", false},
		{"PrefixDoesNotMatch", "76fsd7tfs-secret", "76fsd7tfs", false},
		{"LongerDoesNotMatch", "76fsd7tfs-secret", "76fsd7tfs-secret-and-more", false},
		{"CaseMatters", "abc", "ABC", false},
		{"EmptyGotDoesNotMatch", "76fsd7tfs-secret", "", false},
		{"EmptyExpectedNeverMatchesEmpty", "", "", false},
		{"EmptyExpectedNeverMatchesAnything", "", "anything", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := auth.TokenEqual(tc.expected, tc.got); got != tc.want {
				t.Errorf("TokenEqual(%q, %q) = %v, want %v", tc.expected, tc.got, got, tc.want)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header, want string
	}{
		{"BearerSchemeGivesToken", "Bearer abc.def", "abc.def"},
		{"SchemeIsCaseInsensitive", "bEaReR abc", "abc"},
		{"SurroundingSpacesAreTrimmed", "Bearer   abc  ", "abc"},
		{"NoHeaderGivesNothing", "", ""},
		{"SchemeAloneGivesNothing", "Bearer", ""},
		{"SchemeAndSpaceGivesNothing", "Bearer ", ""},
		{"SchemeAndSpacesGivesNothing", "Bearer    ", ""},
		{"BasicSchemeGivesNothing", "Basic dXNlcjpwYXNz", ""},
		{"BareTokenGivesNothing", "abc.def.ghi", ""},
		{"SchemeWithoutSpaceGivesNothing", "Bearerabc", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if got := auth.BearerToken(r); got != tc.want {
				t.Errorf("BearerToken(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

func TestIdentityTravelsInContext(t *testing.T) {
	t.Parallel()
	if id, ok := auth.FromContext(context.Background()); ok {
		t.Errorf("FromContext(empty) = %+v, true; want none", id)
	}
	want := auth.Identity{User: "Andy@Acme", Key: "andy", Expires: time.Unix(1700000000, 0)}
	got, ok := auth.FromContext(auth.WithIdentity(context.Background(), want))
	if !ok || got != want {
		t.Errorf("FromContext = %+v, %v; want %+v", got, ok, want)
	}
	// A plain string key cannot collide with the package's unexported key.
	type otherKey struct{}
	ctx := context.WithValue(context.Background(), otherKey{}, want)
	if _, ok := auth.FromContext(ctx); ok {
		t.Error("FromContext found an identity stored under another key")
	}
}
