package ipam

import "errors"

// Errors callers can test with errors.Is.
var (
	ErrNoPool    = errors.New("no such pool")
	ErrExhausted = errors.New("pool exhausted")
	ErrConflict  = errors.New("address held by another owner")
	ErrNotFound  = errors.New("no allocation")
	ErrLimit     = errors.New("allocation limit reached")
	ErrClosed    = errors.New("allocator closed")
)
