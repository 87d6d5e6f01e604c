package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestEdgeAnswersEveryFailureInJSONAndHEADWhereItGETs: one router, one
// error shape — a wrong method or path anywhere is JSON with the allowed
// methods named, static files revalidate and answer HEAD, and the API's
// {id} routes reach their handler.
func TestEdgeAnswersEveryFailureInJSONAndHEADWhereItGETs(t *testing.T) {
	t.Parallel()
	n, _ := cluster(t, "memory")
	do := func(method, path string, h ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, n.base+path, nil)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	jsonError := func(what string, res *http.Response, body string, status int, msg string) {
		t.Helper()
		var e map[string]any
		if res.StatusCode != status || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(body), &e) != nil || e["error"] != msg {
			t.Errorf("%s: %d %q %s, want %d {\"error\":%q}", what, res.StatusCode, res.Header.Get("Content-Type"), body, status, msg)
		}
	}

	for _, path := range []string{"/widget.js", "/widget-panel.js", "/widget.css"} {
		res, body := do(http.MethodPost, path)
		jsonError("POST "+path, res, body, http.StatusMethodNotAllowed, "Method not allowed")
		if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
			t.Errorf("POST %s: Allow %q, want GET and HEAD", path, allow)
		}
		res, body = do(http.MethodHead, path)
		if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("ETag") == "" {
			t.Errorf("HEAD %s: %d, %d body bytes, ETag %q", path, res.StatusCode, len(body), res.Header.Get("ETag"))
		}
		res, _ = do(http.MethodGet, path, "If-None-Match", res.Header.Get("ETag"), "Accept-Encoding", "identity")
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, res.StatusCode)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if res, body := do(http.MethodHead, path); res.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: %d %q, want 200 and no body", path, res.StatusCode, body)
		}
	}
	res, body := do(http.MethodGet, "/api/nope", "Authorization", "Bearer "+n.token("andy"))
	jsonError("GET /api/nope", res, body, http.StatusNotFound, "Not found")
	res, body = do(http.MethodDelete, "/api/dnd", "Authorization", "Bearer "+n.token("andy"))
	jsonError("DELETE /api/dnd", res, body, http.StatusMethodNotAllowed, "Method not allowed")
	// The {id} route reaches its handler, which finds no PBX configured.
	req, _ := http.NewRequest(http.MethodPut, n.base+"/api/groups/sales", strings.NewReader(`{"status":"on"}`))
	req.Header.Set("Authorization", "Bearer "+n.token("andy"))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	jsonError("PUT /api/groups/sales", r2, string(b), http.StatusServiceUnavailable, "PBX not configured")
}
