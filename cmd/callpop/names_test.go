package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/pbx/names"
	"github.com/callpop/callpop/pbx/sim"
)

// A node with a PBX shows real names next to the logins: the contact's
// responsible manager on the ringing card, and who took a group call on the
// card it closes elsewhere.
func TestFramesCarryRealNamesFromThePBXAccounts(t *testing.T) {
	t.Parallel()
	for _, kind := range brokers {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testFramesCarryRealNames(t, kind)
		})
	}
}

func testFramesCarryRealNames(t *testing.T, kind string) {
	p := sim.New(sim.Config{Token: simToken, Accounts: []sim.Account{
		{Name: "andy", RealName: "Andy Smith", Ext: "701"},
		{Name: "mike", RealName: "Mike Brown", Ext: "702"},
	}}, zaptest.NewLogger(t))
	t.Cleanup(p.Close)
	pbxSrv := httptest.NewServer(p)
	t.Cleanup(pbxSrv.Close)
	csv := filepath.Join(t.TempDir(), "contacts.csv")
	if err := os.WriteFile(csv, []byte("79101234567,Acme Ltd,mike\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--pbx-url", pbxSrv.URL + "/sys/crm_api.wcgp", "--pbx-token", simToken, "--contacts", csv}
	var rs *redistest.Server
	if kind == "redis" {
		rs = redistest.Start(t)
		args = append(args, "--redis-url", rs.URL())
	}
	n := startNode(t, testConfig(t, args...), nil)
	// The node loads the names in the background as it starts; loading
	// them here as well makes the test independent of when that ends.
	if err := n.srv.names.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rs != nil && rs.Client().Exists(context.Background(), names.Key).Val() != 1 {
		t.Fatalf("names not shared under %s", names.Key)
	}

	andy, mike := n.dial("andy", ""), n.dial("mike", "")
	andy.hello()
	mike.hello()
	n.event("INCOMING", "andy", "names-1", "groupRealName", "Sales")
	n.event("INCOMING", "mike", "names-1", "groupRealName", "Sales")
	f := andy.expectCall("INCOMING", "names-1")
	c, _ := f["contact"].(map[string]any)
	if c["responsible"] != "mike" || c["responsible_name"] != "Mike Brown" {
		t.Fatalf("INCOMING contact %v, want responsible mike, responsible_name Mike Brown", c)
	}
	mike.expectCall("INCOMING", "names-1")

	n.event("ACCEPTED", "mike", "names-1")
	f = andy.expectCall("CANCELLED", "names-1")
	if f["reason"] != "answered_elsewhere" || f["answered_by"] != "mike" || f["answered_by_name"] != "Mike Brown" {
		t.Fatalf("andy's closing frame %v, want answered_by mike, answered_by_name Mike Brown", f)
	}
}

// Without a PBX there are no names, and the frames are as before.
func TestFramesWithoutAPBXCarryNoNames(t *testing.T) {
	t.Parallel()
	csv := filepath.Join(t.TempDir(), "contacts.csv")
	if err := os.WriteFile(csv, []byte("79101234567,Acme Ltd,mike\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, testConfig(t, "--contacts", csv), nil)
	if n.srv.names != nil {
		t.Fatal("names cache built without a PBX")
	}
	andy := n.dial("andy", "")
	andy.hello()
	n.event("INCOMING", "andy", "names-2")
	f := andy.expectCall("INCOMING", "names-2")
	c, _ := f["contact"].(map[string]any)
	if c["responsible"] != "mike" {
		t.Fatalf("contact %v", c)
	}
	if _, ok := c["responsible_name"]; ok {
		t.Fatalf("contact %v has a responsible_name without a PBX", c)
	}
}
