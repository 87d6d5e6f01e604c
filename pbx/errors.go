package pbx

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrInvalidParameters is matched by a 400 answer, and returned when the
	// client refuses the arguments before sending them.
	ErrInvalidParameters = errors.New("pbx: invalid parameters")
	// ErrInvalidToken is matched by a 401 answer: the token is wrong.
	ErrInvalidToken = errors.New("pbx: invalid token")
	// ErrNotConfigured is returned by every method of a client without a URL
	// (a nil or zero Client, or New with an empty Config.URL).
	ErrNotConfigured = errors.New("pbx: not configured")
	// ErrUnavailable is matched when the PBX could not be reached, did not
	// answer in time, or answered 5xx. The underlying cause stays in the
	// chain (a net error, context.DeadlineExceeded, or the 5xx *Error).
	ErrUnavailable = errors.New("pbx: unavailable")
	// ErrBadResponse is returned when the PBX answers 2xx with a body the
	// client cannot read.
	ErrBadResponse = errors.New("pbx: bad response")

	// errUnreadBody marks a 2xx answer whose body could not be read (cut
	// off, or over maxAnswer), beside the cause: the PBX did what it was
	// asked, which matters to makeCall (makecall.go).
	errUnreadBody = errors.New("pbx: 2xx answer, body unread")
)

// Error is a non-2xx answer of the PBX. errors.Is matches a 400 against
// ErrInvalidParameters, a 401 against ErrInvalidToken and a 5xx against
// ErrUnavailable.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the PBX's "error" text, or the start of the body when it
	// is not the documented JSON, or the status text when the body is empty.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("pbx: answered %d: %s", e.Status, e.Message)
}

// Is reports whether the answer's status is the one target stands for.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidParameters:
		return e.Status == http.StatusBadRequest
	case ErrInvalidToken:
		return e.Status == http.StatusUnauthorized
	case ErrUnavailable:
		return e.Status >= 500
	}
	return false
}

// invalid returns an ErrInvalidParameters for arguments refused locally.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidParameters, fmt.Sprintf(format, args...))
}
