// Package jsonhttp writes JSON answers and errors, one shape for all of them:
// the PBX requires JSON for every answer, and the widget reads the same.
package jsonhttp

import (
	"encoding/json"
	"net/http"
)

// Error is an HTTP error with a stable message, answered as
// {"error": Message} plus Extra's fields, if any.
type Error struct {
	Status  int
	Message string
	Extra   map[string]any // more fields of the answer; nil for most
}

func (e *Error) Error() string { return e.Message }

// The errors every JSON endpoint shares. Messages are part of the contract.
var (
	ErrInvalidParameters = &Error{Status: http.StatusBadRequest, Message: "Invalid parameters"}
	ErrInvalidToken      = &Error{Status: http.StatusUnauthorized, Message: "Invalid token"}
	ErrForbidden         = &Error{Status: http.StatusForbidden, Message: "Origin not allowed"}
	ErrNotFound          = &Error{Status: http.StatusNotFound, Message: "Not found"}
	ErrMethodNotAllowed  = &Error{Status: http.StatusMethodNotAllowed, Message: "Method not allowed"}
	ErrTooLarge          = &Error{Status: http.StatusRequestEntityTooLarge, Message: "Request too large"}
	ErrTooManyRequests   = &Error{Status: http.StatusTooManyRequests, Message: "Too many requests"}
	ErrUnavailable       = &Error{Status: http.StatusServiceUnavailable, Message: "Service unavailable"}
	// ErrNetworkForbidden refuses a client from a network the endpoint does
	// not serve (CALLPOP_WEBHOOK_ALLOW).
	ErrNetworkForbidden = &Error{Status: http.StatusForbidden, Message: "Forbidden"}
	ErrPBXNotConfigured = &Error{Status: http.StatusServiceUnavailable, Message: "PBX not configured"}
	ErrPBXUnavailable   = &Error{Status: http.StatusServiceUnavailable, Message: "PBX unavailable"}
)

// PBXRefused is 502 carrying the PBX's own error message and HTTP status.
func PBXRefused(message string, pbxStatus int) *Error {
	return &Error{Status: http.StatusBadGateway, Message: "PBX refused: " + message,
		Extra: map[string]any{"pbx_status": pbxStatus}}
}

// Write answers status with v encoded as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal error"}`)
	}
	WriteEncoded(w, status, append(b, '\n'))
}

// Header values shared by every answer: one-element slices, so an Add
// elsewhere copies instead of changing them.
var (
	jsonType = []string{"application/json; charset=utf-8"}
	nosniff  = []string{"nosniff"}
)

// WriteEncoded answers status with body, JSON encoded already (answers that
// never change are encoded once, not per request).
func WriteEncoded(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Fail answers e as {"error": e.Message, …e.Extra}: every failure of every
// endpoint goes through here, so they all have one shape.
func Fail(w http.ResponseWriter, e *Error) {
	if len(e.Extra) == 0 {
		Write(w, e.Status, map[string]string{"error": e.Message})
		return
	}
	body := make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		body[k] = v
	}
	body["error"] = e.Message
	Write(w, e.Status, body)
}
