// Package testkit is what the tests and the perf tools of this module share
// to drive a gateway from outside: a browser-like HTTP client that keeps
// cookies and sees every redirect, the gateway binary built once, free
// loopback ports, and the PostgreSQL server of a test binary, started or
// the test skipped with the reason.
//
// It lives at the module root so that caddymodule, perf and test can all
// import it. Each test keeps what is its own (a leak check on what its
// browser saw, a retry around Caddy's reloads, its own assertions) and
// calls this package for the rest.
package testkit
