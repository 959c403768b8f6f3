package admin

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Local returns a client of h served in this process, over in-memory
// connections that nothing else can reach, and a function that stops
// serving. The commands use it to run the routes offline on the store they
// opened, exactly as a running gateway runs them.
func Local(h http.Handler) (*Client, func()) {
	l := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	hc := &http.Client{Transport: &http.Transport{DialContext: l.dial}}
	do := func(ctx context.Context, method, uri string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, "http://socialgate"+uri, nil)
		if err != nil {
			return nil, err
		}
		return hc.Do(req)
	}
	return NewClient(do), func() {
		hc.CloseIdleConnections()
		srv.Close()
	}
}

// pipeListener hands the server the other end of each connection dialed.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "socialgate" }
