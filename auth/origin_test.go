package auth_test

import (
	"net/http/httptest"
	"testing"

	"github.com/callpop/callpop/auth"
)

func TestParseOrigins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		list string
		ok   bool
	}{
		{"FullListIsAccepted", "https://crm.example.com, http://localhost:3000, https://*.example.com, *", true},
		{"EmptyListIsAccepted", "", true},
		{"BlankEntriesAreSkipped", " , https://crm.example.com,, ", true},
		{"LoneStarIsAccepted", "*", true},
		{"TrailingSlashIsAccepted", "https://crm.example.com/", true},
		{"UpperCaseIsAccepted", "HTTPS://CRM.Example.COM", true},
		{"IPv6HostIsAccepted", "http://[::1]:3000", true},
		{"MissingSchemeIsRefused", "crm.example.com", false},
		{"HostAndPortWithoutSchemeIsRefused", "localhost:3000", false},
		{"FTPSchemeIsRefused", "ftp://x", false},
		{"WebSocketSchemeIsRefused", "wss://crm.example.com", false},
		{"PathIsRefused", "https://x/path", false},
		{"QueryIsRefused", "https://x?a=1", false},
		{"UserInfoIsRefused", "https://user@x", false},
		{"BrokenIPv6IsRefused", "https://[bad", false},
		{"EmptyHostIsRefused", "https://", false},
		{"OneBadEntrySpoilsTheList", "https://crm.example.com, crm2.example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.ParseOrigins(tc.list)
			if tc.ok && err != nil {
				t.Errorf("ParseOrigins(%q) = %v, want accepted", tc.list, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("ParseOrigins(%q) accepted, want an error", tc.list)
			}
		})
	}
}

func mustOrigins(tb testing.TB, list string) auth.Origins {
	tb.Helper()
	o, err := auth.ParseOrigins(list)
	if err != nil {
		tb.Fatalf("ParseOrigins(%q): %v", list, err)
	}
	return o
}

func TestOriginsAllow(t *testing.T) {
	t.Parallel()
	const (
		list = "https://crm.example.com, http://localhost:3000, https://*.example.com"
		host = "callpop.example.net"
	)
	for _, tc := range []struct {
		name   string
		list   string
		origin string
		host   string
		want   bool
	}{
		{"ListedOriginIsAllowed", list, "https://crm.example.com", host, true},
		{"ListedOriginWithPortIsAllowed", list, "http://localhost:3000", host, true},
		{"OriginCaseIsIgnored", list, "HTTPS://CRM.EXAMPLE.COM", host, true},
		{"WildcardMatchesSubdomain", list, "https://shop.example.com", host, true},
		{"WildcardMatchesDeeperSubdomain", list, "https://a.b.example.com", host, true},
		{"WildcardDoesNotMatchApex", list, "https://example.com", host, false},
		{"WildcardDoesNotMatchLookalike", list, "https://evilexample.com", host, false},
		{"WildcardDoesNotMatchSuffixedHost", list, "https://crm.example.com.evil.com", host, false},
		{"WildcardDoesNotMatchOtherPort", list, "https://shop.example.com:8443", host, false},
		{"UnlistedOriginIsRefused", list, "https://evil.com", host, false},
		{"SchemeMustMatch", list, "http://crm.example.com", host, false},
		{"WildcardSchemeMustMatch", list, "http://shop.example.com", host, false},
		{"PortMustMatch", list, "http://localhost:3001", host, false},
		{"PortlessOriginDoesNotMatchPortedEntry", list, "http://localhost", host, false},
		{"UserInfoDoesNotSmuggleHost", list, "https://crm.example.com@evil.com", host, false},
		{"NullOriginIsRefused", list, "null", host, false},
		{"EmptyOriginIsRefused", list, "", host, false},
		{"SameHostIsAllowedWithEmptyList", "", "https://callpop.example.net", host, true},
		{"SameHostWithPortIsAllowed", "", "http://localhost:8080", "localhost:8080", true},
		{"SameHostCaseIsIgnored", "", "https://CallPop.Example.NET", host, true},
		{"SameHostWithOtherPortIsRefused", "", "http://localhost:3000", "localhost:8080", false},
		{"EmptyListRefusesOtherHosts", "", "https://crm.example.com", host, false},
		{"EmptyOriginIsRefusedEvenForSameHost", "", "", host, false},
		{"StarAllowsAnyOrigin", "*", "https://evil.com", host, true},
		{"StarStillRefusesEmptyOrigin", "*", "", host, false},
		{"IPv6OriginIsAllowed", "http://[::1]:3000", "http://[::1]:3000", host, true},
		// Brackets of an IPv6 entry must not turn into a character class.
		{"IPv6EntryDoesNotMatchBracketContents", "http://[::1]:3000", "http://1:3000", host, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := mustOrigins(t, tc.list)
			if got := o.Allow(tc.origin, tc.host); got != tc.want {
				t.Errorf("ParseOrigins(%q).Allow(%q, %q) = %v, want %v", tc.list, tc.origin, tc.host, got, tc.want)
			}
		})
	}
}

func TestOriginsAllowRequest(t *testing.T) {
	t.Parallel()
	o := mustOrigins(t, "https://crm.example.com")
	for _, tc := range []struct {
		name   string
		origin string // "" = no Origin header
		want   bool
	}{
		{"RequestWithoutOriginIsAllowed", "", true},
		{"ListedOriginIsAllowed", "https://crm.example.com", true},
		{"SameHostIsAllowed", "https://callpop.example.net", true},
		{"OtherOriginIsRefused", "https://evil.com", false},
		{"NullOriginIsRefused", "null", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "https://callpop.example.net/ws", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := o.AllowRequest(r); got != tc.want {
				t.Errorf("AllowRequest(Origin %q) = %v, want %v", tc.origin, got, tc.want)
			}
		})
	}
	t.Run("EmptyListAllowsRequestsWithoutOrigin", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest("GET", "https://callpop.example.net/ws", nil)
		if !(auth.Origins{}).AllowRequest(r) {
			t.Error("zero Origins refused a request without Origin")
		}
	})
}
