package auth_test

import (
	"net/http/httptest"
	"net/netip"
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
	const list = "https://crm.example.com, http://localhost:3000, https://*.example.com"
	for _, tc := range []struct {
		name   string
		list   string
		origin string
		want   bool
	}{
		{"ListedOriginIsAllowed", list, "https://crm.example.com", true},
		{"ListedOriginWithPortIsAllowed", list, "http://localhost:3000", true},
		{"OriginCaseIsIgnored", list, "HTTPS://CRM.EXAMPLE.COM", true},
		{"WildcardMatchesSubdomain", list, "https://shop.example.com", true},
		{"WildcardMatchesDeeperSubdomain", list, "https://a.b.example.com", true},
		{"WildcardDoesNotMatchApex", list, "https://example.com", false},
		{"WildcardDoesNotMatchLookalike", list, "https://evilexample.com", false},
		{"WildcardDoesNotMatchSuffixedHost", list, "https://crm.example.com.evil.com", false},
		{"WildcardDoesNotMatchOtherPort", list, "https://shop.example.com:8443", false},
		{"UnlistedOriginIsRefused", list, "https://evil.com", false},
		{"SchemeMustMatch", list, "http://crm.example.com", false},
		{"OtherSchemeIsRefused", list, "evil://crm.example.com", false},
		{"WildcardSchemeMustMatch", list, "http://shop.example.com", false},
		{"PortMustMatch", list, "http://localhost:3001", false},
		{"PortlessOriginDoesNotMatchPortedEntry", list, "http://localhost", false},
		{"UserInfoDoesNotSmuggleHost", list, "https://crm.example.com@evil.com", false},
		{"NullOriginIsRefused", list, "null", false},
		{"EmptyOriginIsRefused", list, "", false},
		{"EmptyListRefusesEveryOrigin", "", "https://crm.example.com", false},
		{"StarAllowsAnyOrigin", "*", "https://evil.com", true},
		{"StarStillRefusesEmptyOrigin", "*", "", false},
		{"IPv6OriginIsAllowed", "http://[::1]:3000", "http://[::1]:3000", true},
		// Brackets of an IPv6 entry must not turn into a character class.
		{"IPv6EntryDoesNotMatchBracketContents", "http://[::1]:3000", "http://1:3000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := mustOrigins(t, tc.list)
			if got := o.Allow(tc.origin); got != tc.want {
				t.Errorf("ParseOrigins(%q).Allow(%q) = %v, want %v", tc.list, tc.origin, got, tc.want)
			}
		})
	}
}

// TestSameOrigin: a request's own origin is the scheme the browser used —
// TLS, or a trusted proxy's X-Forwarded-Proto, never a claim of anyone else —
// and its Host; a page of another scheme on the same host is another origin.
func TestSameOrigin(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	const (
		proxy    = "10.1.2.3:5555"
		stranger = "203.0.113.9:5555"
	)
	for _, tc := range []struct {
		name   string
		target string // the request as the server sees it: https:// = over TLS
		peer   string
		proto  string // X-Forwarded-Proto; "" = none
		origin string
		want   bool
	}{
		{"PlainHTTPPageIsSameOrigin", "http://callpop.example.net/ws", stranger, "", "http://callpop.example.net", true},
		{"TLSPageIsSameOrigin", "https://callpop.example.net/ws", stranger, "", "https://callpop.example.net", true},
		{"HostCaseIsIgnored", "https://callpop.example.net/ws", stranger, "", "HTTPS://CallPop.Example.NET", true},
		{"HTTPPageOverTLSIsRefused", "https://callpop.example.net/ws", stranger, "", "http://callpop.example.net", false},
		{"HTTPSPageOverPlainHTTPIsRefused", "http://callpop.example.net/ws", stranger, "", "https://callpop.example.net", false},
		{"OtherSchemeIsRefused", "https://callpop.example.net/ws", stranger, "", "evil://callpop.example.net", false},
		{"OtherSchemeOverHTTPIsRefused", "http://callpop.example.net/ws", stranger, "", "evil://callpop.example.net", false},
		{"OtherHostIsRefused", "https://callpop.example.net/ws", stranger, "", "https://evil.example.net", false},
		{"OtherPortIsRefused", "http://localhost:8080/ws", stranger, "", "http://localhost:3000", false},
		{"SamePortIsSameOrigin", "http://localhost:8080/ws", stranger, "", "http://localhost:8080", true},
		{"DefaultHTTPSPortInOrigin", "https://callpop.example.net/ws", stranger, "", "https://callpop.example.net:443", true},
		{"DefaultHTTPSPortInHost", "https://callpop.example.net:443/ws", stranger, "", "https://callpop.example.net", true},
		{"DefaultHTTPPortInHost", "http://callpop.example.net:80/ws", stranger, "", "http://callpop.example.net", true},
		{"HTTPPortIsNotHTTPSDefault", "https://callpop.example.net:80/ws", stranger, "", "https://callpop.example.net", false},
		{"IPv6DefaultPort", "https://[::1]:443/ws", stranger, "", "https://[::1]", true},
		{"TrustedProxyHTTPS", "http://callpop.example.net/ws", proxy, "https", "https://callpop.example.net", true},
		{"TrustedProxyHTTPSRefusesHTTPPage", "http://callpop.example.net/ws", proxy, "https", "http://callpop.example.net", false},
		{"TrustedProxyHTTPSRefusesOtherScheme", "http://callpop.example.net/ws", proxy, "https", "evil://callpop.example.net", false},
		{"TrustedProxyLastValueCounts", "http://callpop.example.net/ws", proxy, "http, https", "https://callpop.example.net", true},
		{"TrustedProxyHTTPOverTLSHop", "https://callpop.example.net/ws", proxy, "http", "http://callpop.example.net", true},
		{"TrustedProxyGarbageFallsBack", "http://callpop.example.net/ws", proxy, "evil", "evil://callpop.example.net", false},
		{"UntrustedProtoIsIgnored", "http://callpop.example.net/ws", stranger, "https", "https://callpop.example.net", false},
		{"UntrustedProtoKeepsHTTP", "http://callpop.example.net/ws", stranger, "https", "http://callpop.example.net", true},
		{"NullOriginIsRefused", "http://callpop.example.net/ws", stranger, "", "null", false},
		{"NoOriginIsNotSameOrigin", "http://callpop.example.net/ws", stranger, "", "", false},
		{"PathIsRefused", "http://callpop.example.net/ws", stranger, "", "http://callpop.example.net/x", false},
		{"UserInfoIsRefused", "http://callpop.example.net/ws", stranger, "", "http://u@callpop.example.net", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", tc.target, nil) // an https:// target sets r.TLS
			r.RemoteAddr = tc.peer
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := auth.SameOrigin(r, trusted); got != tc.want {
				t.Errorf("SameOrigin = %v, want %v (scheme %s)", got, tc.want, auth.RequestScheme(r, trusted))
			}
			o := mustOrigins(t, "").WithTrustedProxies(trusted)
			if got := o.AllowRequest(r); got != (tc.want || tc.origin == "") {
				t.Errorf("AllowRequest = %v, want %v", got, tc.want || tc.origin == "")
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
		{"SameOriginIsAllowed", "https://callpop.example.net", true},
		{"SameHostOtherSchemeIsRefused", "http://callpop.example.net", false},
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
