package pbx

import "strings"

// The command names the client sends (docs/pbx-api.md, "CRM → PBX: the commands").
const (
	CmdAccounts           = "accounts"
	CmdGroups             = "groups"
	CmdMakeCall           = "makeCall"
	CmdHistory            = "history"
	CmdSubscribeOnCalls   = "subscribeOnCalls"
	CmdSubscriptionStatus = "subscriptionStatus"
	CmdSetDND             = "set_dnd"
	CmdGetDND             = "get_dnd"
)

// commands maps a lower-cased command name, including the spellings the
// document's examples use, to its canonical name.
var commands = map[string]string{
	"accounts":           CmdAccounts,
	"groups":             CmdGroups,
	"makecall":           CmdMakeCall,
	"history":            CmdHistory,
	"subscribeoncalls":   CmdSubscribeOnCalls,
	"subscriptionstatus": CmdSubscriptionStatus,
	"subscribtionstatus": CmdSubscriptionStatus, // sic, the document's example
	"set_dnd":            CmdSetDND,
	"get_dnd":            CmdGetDND,
}

// CanonicalCommand maps a command name as a CRM may send it to the name of
// the document's command table: it ignores case and surrounding spaces and
// accepts the example's misspelling "subscribtionstatus". It reports false
// for a name that is no CRM → PBX command.
func CanonicalCommand(name string) (string, bool) {
	c, ok := commands[strings.ToLower(strings.TrimSpace(name))]
	return c, ok
}

// IsReadOnly reports whether the canonical command cmd only reads the PBX's
// state, so that sending it twice is harmless: accounts, groups, history,
// subscriptionStatus and get_dnd. Only those are retried, and only those may
// be sent with GET.
func IsReadOnly(cmd string) bool {
	switch cmd {
	case CmdAccounts, CmdGroups, CmdHistory, CmdSubscriptionStatus, CmdGetDND:
		return true
	}
	return false
}
