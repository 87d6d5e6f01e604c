// Package sim is a simulated cloud PBX for demos and tests. A *PBX is an
// http.Handler serving the CRM → PBX API of docs/pbx-api.md (what
// pbx.Client speaks) against in-memory state, and it plays calls by posting
// the PBX → CRM webhooks (contact, event, history) to callpop,
// form-encoded as the real PBX does.
//
// Command names are matched with pbx.CanonicalCommand: without regard to
// case, and with the document's spellings subscribeoncalls and
// subscribtionstatus accepted besides the canonical ones. Read-only commands
// may come as GET or POST, the others only as POST. The token is checked
// first, in constant time.
//
// Calls are played by the scenario methods (DirectCall, GroupCall,
// MissedCall, Transfer, OutgoingCall), by makeCall requests, and by Demo,
// which loops through the scenarios until its context ends. Every call ends
// with its history webhook and is appended to the history the history
// command serves. Only GroupCall honours subscriptions and do-not-disturb:
// it rings the members who take calls in the group.
//
// Calls ring for a Config.Ring and talk for a Config.Talk drawn at random
// (one Step each when unset), and their history reports exactly those times.
// With Config.RecordingsURL set, answered calls link a recording that
// Recordings serves, so a demo needs no files.
package sim
