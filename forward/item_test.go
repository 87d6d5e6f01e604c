package forward_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/forward"
)

func TestFlagsFollowTheScenariosOfPBXAPISection6(t *testing.T) {
	t.Parallel()
	known := &event.Contact{Name: "Acme Ltd", Responsible: "andy"}
	const (
		missed   = forward.FlagMissedUnknownNumber
		outgoing = forward.FlagOutgoingUnknownNumber
		unmapped = forward.FlagUnmappedUser
	)
	for _, tc := range []struct {
		name      string
		user, dir string
		status    event.Status
		contact   *event.Contact
		want      []string
	}{
		{"missed from unknown", "andy@acme", event.DirIn, event.Missed, nil, []string{missed}},
		{"cancelled by an unknown caller", "andy", event.DirIn, event.Cancel, nil, []string{missed}},
		{"missed from a known client", "andy", event.DirIn, event.Missed, known, []string{}},
		{"answered from unknown", "andy", event.DirIn, event.Success, nil, []string{}},
		{"an empty contact knows nothing", "andy", event.DirIn, event.Missed, &event.Contact{}, []string{missed}},
		{"outgoing to unknown, answered", "andy", event.DirOut, event.Success, nil, []string{outgoing}},
		{"outgoing to unknown, busy", "andy", event.DirOut, event.Busy, nil, []string{outgoing}},
		{"outgoing to unknown, missed", "andy", event.DirOut, event.Missed, nil, []string{outgoing}},
		{"outgoing to a known client", "andy", event.DirOut, event.NotAvailable, known, []string{}},
		{"the switch itself", "pbx", event.DirIn, event.Success, known, []string{unmapped}},
		{"the switch, upper case, with a tenant", "PBX@acme", event.DirIn, event.Success, known, []string{unmapped}},
		{"a group login", "g_5c4f0d2e@acme", event.DirIn, event.Success, known, []string{unmapped}},
		{"no user", "", event.DirOut, event.Success, known, []string{unmapped}},
		{"missed in the IVR from unknown", "pbx", event.DirIn, event.Missed, nil, []string{missed, unmapped}},
		{"a group's outgoing to unknown", "g_1@acme", event.DirOut, event.Success, nil, []string{outgoing, unmapped}},
	} {
		rec := record("c1")
		rec.User, rec.Direction, rec.Status, rec.Contact = tc.user, tc.dir, tc.status, tc.contact
		if got := forward.Flags(rec); !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("%s: Flags = %#v, want %#v", tc.name, got, tc.want)
		}
		if got := forward.NewItem(rec).Flags; !slices.Equal(got, tc.want) {
			t.Errorf("%s: Item.Flags = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestItemCarriesTheWholeRecordWithAKeyPerCallAndUser(t *testing.T) {
	t.Parallel()
	moscow := time.FixedZone("MSK", 3*3600)
	rec := event.Record{
		CallID: "B10D0EB124F4E64AFAEA-1511", User: "Andy@acme", Phone: "79101234567", Direction: event.DirOut,
		Status: event.Success, Start: time.Date(2017, 7, 3, 15, 11, 10, 0, moscow), Duration: 124,
		Link: "https://link/file.mp3", Ext: "101", GroupRealName: "Sales", Telnum: "74950000001",
		Diversion: "74950000000", Rating: "5", Contact: &event.Contact{Name: "Acme Ltd", Responsible: "mike"},
	}
	b, err := json.Marshal(forward.NewItem(rec))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"B10D0EB124F4E64AFAEA-1511:andy","callid":"B10D0EB124F4E64AFAEA-1511","user":"Andy@acme",` +
		`"phone":"79101234567","direction":"out","status":"Success","start":"2017-07-03T12:11:10Z","duration":124,` +
		`"link":"https://link/file.mp3","ext":"101","groupRealName":"Sales","telnum":"74950000001",` +
		`"diversion":"74950000000","rating":"5","contact":{"name":"Acme Ltd","responsible":"mike"},"flags":[]}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}

	for _, tc := range []struct{ user, want string }{
		{"Andy@acme", "c1:andy"}, {"andy", "c1:andy"}, {"pbx", "c1:pbx"}, {"", "c1:"},
	} {
		r := record("c1")
		r.User = tc.user
		if got := forward.Key(r); got != tc.want {
			t.Errorf("Key(user %q) = %q, want %q", tc.user, got, tc.want)
		}
	}
	r := record("c1")
	r.User, r.Rating = "Andy@acme", "4"
	if got := forward.RatingKey(r); got != "c1:andy:rating:4" {
		t.Errorf("RatingKey = %q, want c1:andy:rating:4", got)
	}
}

func TestItemOmitsAnUnknownContact(t *testing.T) {
	t.Parallel()
	rec := record("c1")
	rec.Contact = &event.Contact{}
	b, err := json.Marshal(forward.NewItem(rec))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["contact"]; ok {
		t.Errorf("an empty contact is sent: %s", b)
	}
}
