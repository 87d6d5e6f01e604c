package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// errUnhealthy marks a health check that ran and failed: exit status 1, what
// container runtimes read as "unhealthy" (exitCode).
var errUnhealthy = errors.New("unhealthy")

// runHealthcheck asks this node's /healthz (or /readyz) and returns nil on
// 200: a container's HEALTHCHECK needs no wget or curl in the image. It reads
// the node's own CALLPOP_ADDR and CALLPOP_TLS_CERT, so the same environment
// that configures the node points the check at it.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var addr, tlsCert, rawURL string
	var ready bool
	var timeout time.Duration
	fs := newFlagSet("healthcheck")
	fs.String(&addr, "addr", "CALLPOP_ADDR", defaultAddr, "the node's listen address; the check asks 127.0.0.1 at its port (or its host, when it names one)")
	fs.String(&tlsCert, "tls-cert", "CALLPOP_TLS_CERT", "", "set when the node serves HTTPS; the check then uses https (certificate not verified on loopback)")
	fs.String(&rawURL, "url", "", "", "the URL to ask instead (http or https; its certificate is verified unless its host is loopback)")
	fs.Bool(&ready, "ready", "ask /readyz (broker reachable, not draining) instead of /healthz")
	fs.Duration(&timeout, "timeout", "", 3*time.Second, "longest the check waits for the answer")
	if err := fs.parse(args, getenv, stdout); err != nil {
		return err
	}
	u, err := healthURL(addr, tlsCert != "", rawURL, ready)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if u.Scheme == "https" && hostIsLoopback(u.Hostname()) {
		// The node's certificate names its public host, never 127.0.0.1;
		// on loopback nothing stands between the check and the node.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback only
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	// Only scheme, host and path in errors: a --url may carry credentials.
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("healthcheck: %s: %w (%w)", shown, errUnhealthy, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: %w (%s)", shown, errUnhealthy, resp.Status)
	}
	return nil
}

// healthURL is the URL the check asks: rawURL when given, else the node's
// port on 127.0.0.1 (or the host addr names, when it names one).
func healthURL(addr string, https bool, rawURL string, ready bool) (*url.URL, error) {
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("--url: not an http(s) URL with a host")
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = path
		}
		return u, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr (CALLPOP_ADDR): %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host == "" || host == "localhost" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}, nil
}

// hostIsLoopback reports whether host is localhost or a loopback address.
func hostIsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
