//go:build !linux

package pgserver

import "fmt"

func start(Options) (*Server, error) {
	return nil, fmt.Errorf("%w: starting a private server is implemented for Linux only", ErrUnavailable)
}
