package sim

import (
	"context"
	"net/http"
	"time"

	"github.com/callpop/callpop/pbx"
)

// DefaultStep is the pause between two webhooks of a played call: 1 s, slow
// enough to watch a popup ring, be answered and close.
const DefaultStep = time.Second

// DefaultDiversion is the company number incoming calls come through when
// Config.Diversion is empty: a Moscow number.
const DefaultDiversion = "74951234567"

// DefaultWebhookTimeout bounds one webhook post when Config.HTTPClient is
// nil: 5 s.
const DefaultWebhookTimeout = 5 * time.Second

// DemoRing and DemoTalk are an office's paces, for a demo someone watches:
// calls ring 5 to 15 s and talk 10 to 40 s, long enough to read a popup.
var (
	DemoRing = Span{Min: 5 * time.Second, Max: 15 * time.Second}
	DemoTalk = Span{Min: 10 * time.Second, Max: 40 * time.Second}
)

// Span is a range of durations; each use draws one uniformly from
// [Min, Max]. A Max below Min means Min.
type Span struct{ Min, Max time.Duration }

// Account is an employee of the simulated PBX.
type Account = pbx.Account

// Group is a department of the simulated PBX.
type Group struct {
	// ID is the group id (group_id in the API).
	ID string
	// RealName is the department's name, the webhooks' groupRealName.
	RealName string
	// Ext is the group's internal number, if any. All digits are served as
	// a JSON number, as in the document's example.
	Ext string
	// Members are the logins of the group's employees; each must be an
	// Account's Name. Every member starts subscribed.
	Members []string
}

// Config configures a PBX.
type Config struct {
	// Token is the API key every request must carry in the field token,
	// compared in constant time. Empty means requests without a token pass.
	Token string
	// CRMURL is callpop's webhook URL. Empty means calls are played and
	// recorded but no webhook is posted.
	CRMURL string
	// CRMToken is the crm_token sent with every webhook.
	CRMToken string
	// Accounts are the PBX's employees.
	Accounts []Account
	// Groups are the PBX's departments.
	Groups []Group
	// Now is the clock for call starts and history periods. Nil means
	// time.Now.
	Now func() time.Time
	// Step is the pause between two webhooks of a played call. Zero means
	// DefaultStep; tests use about a millisecond.
	Step time.Duration
	// Ring is how long a call rings before it is answered or the client
	// hangs up. Zero means one Step.
	Ring Span
	// Talk is how long an answered call talks. Zero means one Step. The
	// history's wait and duration are the ring and talk times the call was
	// held for, in whole seconds (at least 1 when it took any time).
	Talk Span
	// Sleep waits d or until ctx ends, returning ctx's error then. Nil means
	// a timer; tests pass one that advances their Now instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// DemoPause is the pause between two calls of Demo. Zero means three
	// Steps.
	DemoPause time.Duration
	// DemoFocus, when set, is the account most of Demo's calls go to (two
	// in three), so someone watching as that manager sees popups soon.
	DemoFocus string
	// Phones are known clients' numbers Demo's calls mostly come from; one
	// call in four, and every call when Phones is empty, comes from a random
	// number instead, as from a client the CRM does not know.
	Phones []string
	// Diversion is the company number incoming calls come through, sent as
	// diversion and listed as via. Empty means DefaultDiversion.
	Diversion string
	// RecordURL prefixes the recording link of answered calls (the callid
	// and ".mp3" follow). Empty means calls have no recording.
	RecordURL string
	// RecordingsURL is the absolute URL Recordings is served at (ending
	// in /); when set, answered calls link RecordingsURL + callid + ".wav",
	// a recording the simulator itself serves, instead of RecordURL's.
	RecordingsURL string
	// NewCallID generates call ids. Nil means NewCallID.
	NewCallID func() string
	// HTTPClient posts the webhooks. Nil means a client with
	// DefaultWebhookTimeout.
	HTTPClient *http.Client
}
