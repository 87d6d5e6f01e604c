// Package pbx is callpop's client for the cloud PBX REST API: the CRM → PBX
// commands of docs/pbx-api.md (accounts, groups, makeCall, history,
// subscribeOnCalls, subscriptionStatus, set_dnd, get_dnd), plus the parser and
// writer of the history CSV. The simulated PBX that serves the same API lives
// in pbx/sim. The package imports no other callpop package.
//
// # Requests
//
// Every command is one form-encoded POST to the configured URL (for example
// https://domain/sys/crm_api.wcgp) carrying the fields cmd and token, plus the
// command's own fields. Answers are JSON, except history, which is CSV.
//
// # Command names and their variants
//
// The client always sends the names of the document's command table:
// accounts, groups, makeCall, history, subscribeOnCalls, subscriptionStatus,
// set_dnd and get_dnd (the Cmd* constants). The document's own request
// examples spell two of them differently, cmd=subscribeoncalls and
// cmd=subscribtionstatus (sic), so a server must match command names without
// regard to case and must also accept the "subscribtion" misspelling.
// CanonicalCommand does exactly that, and pbx/sim uses it; the client never
// sends a variant.
//
// # Errors
//
// A PBX that answers with a non-2xx status yields an *Error carrying the
// status and the PBX's "error" text; errors.Is matches it against
// ErrInvalidParameters (400) and ErrInvalidToken (401). A PBX that cannot be
// reached (connection refused, DNS, a timeout, a connection dropped
// mid-answer) or that answers 5xx yields an error matching ErrUnavailable,
// so a caller can tell "PBX unreachable" from "PBX refused"; a caller's own
// cancellation stays a plain context.Canceled. Arguments the client can check
// itself (an empty user, an unknown period) fail with ErrInvalidParameters
// before any request is made. A 2xx answer that cannot be read is
// ErrBadResponse, except for makeCall: its 2xx means the call was placed,
// so MakeCall succeeds with whatever id it can read, or none. A client
// without a URL answers ErrNotConfigured from every method.
//
// # Retries
//
// Only the read-only commands (accounts, groups, history, subscriptionStatus,
// get_dnd) are retried, and only after a network error or a 5xx answer, with
// exponential back-off and jitter. makeCall, set_dnd and subscribeOnCalls are
// sent exactly once: a retried makeCall could ring a manager twice.
package pbx
