package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestContactsComeFromTheCRMWithTheDirectoryAsFallback runs a node against a
// CRM look-up endpoint that knows one number, hangs on another and fails on a
// third, with the built-in directory behind it.
func TestContactsComeFromTheCRMWithTheDirectoryAsFallback(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("phone") {
		case "79101234567":
			w.Write([]byte(`{"contact_name":"ООО Рога и Копыта","responsible":"andy"}`))
		case "79990000001": // hangs until the test ends
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(func() { close(release); crm.Close() })
	csv := filepath.Join(t.TempDir(), "contacts.csv")
	if err := os.WriteFile(csv, []byte("79165550101,ИП Петров,mike\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, testConfig(t, "--contact-url", crm.URL+"/contact?phone={phone}", "--contacts", csv,
		"--contact-budget", "500ms"), nil)

	cases := []struct{ phone, name string }{
		{"+7 910 123-45-67", "ООО Рога и Копыта"}, // the CRM knows it
		{"89165550101", "ИП Петров"},              // the CRM fails: the directory answers
		{"79990000001", ""},                       // the CRM hangs: {} within the budget
	}
	for _, c := range cases {
		start := time.Now()
		st, body := n.post("cmd", "contact", "phone", c.phone, "callid", "k")
		if took := time.Since(start); st != http.StatusOK || took > 3*time.Second {
			t.Fatalf("%s: %d after %v", c.phone, st, took)
		}
		if got, _ := body["contact_name"].(string); got != c.name {
			t.Errorf("%s: contact_name %q, want %q", c.phone, got, c.name)
		}
	}
	// The popup carries the CRM's answer too.
	a := n.dial("andy", "")
	a.hello()
	n.event("INCOMING", "andy", "k1")
	f := a.expectCall("INCOMING", "k1")
	if c, _ := f["contact"].(map[string]any); c["name"] != "ООО Рога и Копыта" || c["responsible"] != "andy" {
		t.Fatalf("popup contact %v", f["contact"])
	}
}
