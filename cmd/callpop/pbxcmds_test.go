package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestAccountsListsEmployeesAndDepartments(t *testing.T) {
	t.Parallel()
	_, _, pbxURL := withSimPBXURL(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"accounts", "--pbx-url", pbxURL, "--pbx-token", simToken}, envOf(nil), &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"andy", "mike", "701", "sales", "Sales"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"accounts", "--pbx-url", pbxURL, "--pbx-token", "wrong"}, envOf(nil), &out, &out); err == nil {
		t.Fatal("a wrong PBX token listed accounts")
	}
}

func TestHistoryImportBackfillsRecentCallsOnce(t *testing.T) {
	t.Parallel()
	a, p, pbxURL := withSimPBXURL(t)
	ctx := context.Background()
	if _, err := p.DirectCall(ctx, "andy", "79101234567"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.MissedCall(ctx, "mike", "79101234568"); err != nil {
		t.Fatal(err)
	}
	fresh := startNode(t, testConfig(t), nil) // knows nothing yet
	args := []string{"history", "import", "--period", "today", "--node", fresh.base, "--crm-token", testCRMToken,
		"--pbx-url", pbxURL, "--pbx-token", simToken}
	for range 2 { // importing twice doubles nothing
		var out bytes.Buffer
		if err := run(ctx, args, envOf(nil), &out, &out); err != nil {
			t.Fatalf("import: %v\n%s", err, out.String())
		}
	}
	_, andy := fresh.api("andy", http.MethodGet, "/api/calls", "")
	_, mike := fresh.api("mike", http.MethodGet, "/api/calls", "")
	if len(andy["calls"].([]any)) != 1 || len(mike["calls"].([]any)) != 1 {
		t.Fatalf("after import: andy %v, mike %v", andy, mike)
	}
	if rec := mike["calls"].([]any)[0].(map[string]any); rec["status"] != "Missed" || mike["unseen_missed"] != 1.0 {
		t.Fatalf("mike's missed call imported as %v", rec)
	}
	_ = a
}
