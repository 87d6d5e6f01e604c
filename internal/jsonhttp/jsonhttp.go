// Package jsonhttp writes JSON answers and errors, one shape for all of them:
// the PBX requires JSON for every answer, and the widget reads the same.
package jsonhttp

import (
	"encoding/json"
	"net/http"
)

// Error is an HTTP error with a stable message, answered as {"error": Message}.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// The errors every JSON endpoint shares. Messages are part of the contract.
var (
	ErrInvalidParameters = &Error{http.StatusBadRequest, "Invalid parameters"}
	ErrInvalidToken      = &Error{http.StatusUnauthorized, "Invalid token"}
	ErrForbidden         = &Error{http.StatusForbidden, "Origin not allowed"}
	ErrNotFound          = &Error{http.StatusNotFound, "Not found"}
	ErrMethodNotAllowed  = &Error{http.StatusMethodNotAllowed, "Method not allowed"}
	ErrTooLarge          = &Error{http.StatusRequestEntityTooLarge, "Request too large"}
	ErrTooManyRequests   = &Error{http.StatusTooManyRequests, "Too many requests"}
	ErrUnavailable       = &Error{http.StatusServiceUnavailable, "Service unavailable"}
)

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

// Fail answers e as {"error": e.Message}.
func Fail(w http.ResponseWriter, e *Error) {
	Write(w, e.Status, map[string]string{"error": e.Message})
}
