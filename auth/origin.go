package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// Origins is the allow-list of CRM page origins that may open a socket or
// call the page API. Entries are "scheme://host[:port]"; the host may hold
// "*" wildcards ("https://*.example.com"); a lone "*" allows every origin.
// A request's own origin (same host) is always allowed.
type Origins struct {
	any      bool
	patterns []string // "scheme://host[:port]", lower case
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

// Allow reports whether a page at origin may talk to callpop served at
// host (the request's Host header).
func (o Origins) Allow(origin, host string) bool {
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
	if strings.EqualFold(u.Host, host) {
		return true
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
// from an allowed origin.
func (o Origins) AllowRequest(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || o.Allow(origin, r.Host)
}
