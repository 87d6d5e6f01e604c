package event

// WebSocket close codes callpop sends, shared with the widget (widget.js keeps
// the same table). 1008, 1012 and 4000–4499 mean "reconnect" (with back-off);
// 4500–4999 mean "stop: reconnecting will not help".
const (
	// ClosePolicy: the client sent more frames than a session may (see
	// hub.DefaultInboundRate); reconnect with back-off (RFC 6455 "policy
	// violation").
	ClosePolicy = 1008
	// CloseRestart: the node is shutting down; reconnect, the load balancer
	// picks another node (RFC 6455 "service restart").
	CloseRestart = 1012
	// CloseSlow: the session fell behind and its queue overflowed; reconnect
	// with since= to catch up.
	CloseSlow = 4000
	// CloseTokenExpired: the token's exp passed; fetch a fresh token, then
	// reconnect.
	CloseTokenExpired = 4001
	// CloseUnavailable: the broker could not be reached; retry later.
	CloseUnavailable = 4002
	// CloseTooMany: the user has too many sessions open; retry later.
	CloseTooMany = 4003
	// CloseUnauthorized: the token is not valid for this server.
	CloseUnauthorized = 4500
	// CloseProtocol: the client sent something callpop cannot read.
	CloseProtocol = 4501
	// CloseTenantDisabled: the session's tenant was disabled (or removed);
	// reconnecting will not help until an operator enables it again.
	CloseTenantDisabled = 4502
)

// Reconnect reports whether a widget should reconnect after code.
func Reconnect(code int) bool { return code < 4500 }
