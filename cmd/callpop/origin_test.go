package main

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"
)

// originStatus sends GET /ws (an upgrade) and GET /api/calls from a page at
// origin, with the extra header pairs, and returns both statuses.
func (n *node) originStatus(c *http.Client, base, origin string, header ...string) (ws, api int) {
	n.t.Helper()
	do := func(path string, upgrade bool) int {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Origin", origin)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		} else {
			req.Header.Set("Authorization", "Bearer "+n.token("andy"))
		}
		resp, err := c.Do(req)
		if err != nil {
			n.t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	return do("/ws?token="+n.token("andy"), true), do("/api/calls", false)
}

// TestSameOriginIncludesTheScheme: with no allowed origins, a page on
// callpop's own host is allowed only with the scheme the browser used — TLS,
// or the X-Forwarded-Proto of a trusted proxy, never that of anyone else;
// http:// and evil:// pages of an https:// host are refused (403 before the
// upgrade, 403 from the API).
func TestSameOriginIncludesTheScheme(t *testing.T) {
	t.Parallel()
	const (
		ok      = http.StatusSwitchingProtocols
		refused = http.StatusForbidden
	)
	check := func(t *testing.T, n *node, c *http.Client, base, origin string, wantWS int, header ...string) {
		t.Helper()
		ws, api := n.originStatus(c, base, origin, header...)
		wantAPI := http.StatusOK
		if wantWS == refused {
			wantAPI = refused
		}
		if ws != wantWS || api != wantAPI {
			t.Errorf("Origin %s %v: /ws %d, /api %d; want %d, %d", origin, header, ws, api, wantWS, wantAPI)
		}
	}

	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		cert, key, pool := selfSigned(t)
		n := startNode(t, testConfig(t, "--tls-cert", cert, "--tls-key", key), nil)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
		host := strings.TrimPrefix(n.base, "http://")
		base := "https://" + host
		check(t, n, c, base, "https://"+host, ok)
		check(t, n, c, base, "http://"+host, refused)
		check(t, n, c, base, "evil://"+host, refused)
	})
	t.Run("TrustedProxy", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, testConfig(t, "--trusted-proxies", "127.0.0.1"), nil) // the test is the proxy
		host := strings.TrimPrefix(n.base, "http://")
		c := http.DefaultClient
		check(t, n, c, n.base, "https://"+host, ok, "X-Forwarded-Proto", "https")
		check(t, n, c, n.base, "http://"+host, refused, "X-Forwarded-Proto", "https")
		check(t, n, c, n.base, "evil://"+host, refused, "X-Forwarded-Proto", "https")
		check(t, n, c, n.base, "http://"+host, ok)
	})
	t.Run("UntrustedForwardedProtoIsIgnored", func(t *testing.T) {
		t.Parallel()
		n := startNode(t, testConfig(t), nil)
		host := strings.TrimPrefix(n.base, "http://")
		c := http.DefaultClient
		check(t, n, c, n.base, "https://"+host, refused, "X-Forwarded-Proto", "https")
		check(t, n, c, n.base, "http://"+host, ok, "X-Forwarded-Proto", "https")
		check(t, n, c, n.base, "evil://"+host, refused)
	})
}
