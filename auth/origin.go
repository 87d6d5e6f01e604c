package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/callpop/callpop/internal/guard"
)

// Origins is the allow-list of CRM page origins that may open a socket or
// call the page API. Entries are "scheme://host[:port]"; the host may hold
// "*" wildcards ("https://*.example.com"); a lone "*" allows every origin.
// A request's own origin (SameOrigin) is always allowed.
type Origins struct {
	any      bool
	patterns []string       // "scheme://host[:port]", lower case
	trusted  []netip.Prefix // proxies whose X-Forwarded-Proto SameOrigin believes
}

// ParseOrigins parses a comma-separated list; empty means same origin only.
func ParseOrigins(list string) (Origins, error) {
	var o Origins
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		switch raw {
		case "":
			continue
		case "*":
			o.any = true
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return Origins{}, fmt.Errorf("auth: origin %q: want scheme://host[:port]", raw)
		}
		p := strings.ToLower(u.Scheme + "://" + u.Host)
		p = strings.NewReplacer("[", `\[`, "]", `\]`).Replace(p) // IPv6 brackets are literal, not a class
		if _, err := path.Match(p, ""); err != nil {
			return Origins{}, fmt.Errorf("auth: origin %q: bad pattern", raw)
		}
		o.patterns = append(o.patterns, p)
	}
	return o, nil
}

// WithTrustedProxies returns o believing the X-Forwarded-Proto of requests
// from these proxies when it decides a request's own origin (SameOrigin).
func (o Origins) WithTrustedProxies(trusted []netip.Prefix) Origins {
	o.trusted = trusted
	return o
}

// Allow reports whether a page at origin, another than the request's own,
// is on the list.
func (o Origins) Allow(origin string) bool {
	if origin == "" {
		return false
	}
	if o.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	origin = strings.ToLower(u.Scheme + "://" + u.Host)
	for _, p := range o.patterns {
		if ok, _ := path.Match(p, origin); ok {
			return true
		}
	}
	return false
}

// AllowRequest reports whether r may proceed: requests without an Origin
// header (not from a browser page) are allowed, browser requests must come
// from their own origin (SameOrigin) or an allowed one.
func (o Origins) AllowRequest(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || SameOrigin(r, o.trusted) || o.Allow(origin)
}

// SameOrigin reports whether r's Origin header is r's own origin: the
// scheme the browser used (RequestScheme) and r's Host, a default port
// (:443 for https, :80 for http) the same as none. A request without an
// Origin is not same-origin: it is from no page at all.
func SameOrigin(r *http.Request, trusted []netip.Prefix) bool {
	u, err := url.Parse(r.Header.Get("Origin"))
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || r.Host == "" {
		return false
	}
	scheme := RequestScheme(r, trusted)
	return strings.EqualFold(u.Scheme, scheme) &&
		strings.EqualFold(withoutDefaultPort(u.Host, scheme), withoutDefaultPort(r.Host, scheme))
}

// RequestScheme is the scheme the client used to reach r: a trusted proxy's
// X-Forwarded-Proto ("http" or "https": the proxy talks to the browser),
// else "https" when r came over TLS, else "http". X-Forwarded-Proto from any
// other peer is the client's own claim and is ignored; of several values the
// last counts, the one the immediate proxy set or appended.
func RequestScheme(r *http.Request, trusted []netip.Prefix) string {
	if guard.FromTrustedProxy(r, trusted) {
		vs := r.Header.Values("X-Forwarded-Proto")
		if len(vs) > 0 {
			last := vs[len(vs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			switch p := strings.ToLower(strings.TrimSpace(last)); p {
			case "http", "https":
				return p
			}
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// withoutDefaultPort drops scheme's default port from a host[:port].
func withoutDefaultPort(hostport, scheme string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || (port != "443" || scheme != "https") && (port != "80" || scheme != "http") {
		return hostport
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}
