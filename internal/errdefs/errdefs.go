// Package errdefs holds the error categories that front ends map to exit
// codes (CLI) and status codes (HTTP) in exactly one place each.
package errdefs

import "errors"

var (
	// ErrNotFound: the named object (image, container, file) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the object exists already or is in the wrong state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the user's input is malformed or out of range.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnsupported: the host cannot honour the request.
	ErrUnsupported = errors.New("not supported on this host")
)

// Invalidf returns an ErrInvalid with a message.
func Invalidf(format string, args ...any) error { return wrap(ErrInvalid, format, args...) }

// NotFoundf returns an ErrNotFound with a message.
func NotFoundf(format string, args ...any) error { return wrap(ErrNotFound, format, args...) }

// Conflictf returns an ErrConflict with a message.
func Conflictf(format string, args ...any) error { return wrap(ErrConflict, format, args...) }

// Unsupportedf returns an ErrUnsupported with a message.
func Unsupportedf(format string, args ...any) error { return wrap(ErrUnsupported, format, args...) }

type catError struct {
	cat error
	msg string
}

func (e *catError) Error() string { return e.msg }
func (e *catError) Unwrap() error { return e.cat }

func wrap(cat error, format string, args ...any) error {
	return &catError{cat: cat, msg: sprintf(format, args...)}
}
