// Package httplimit bounds what an HTTP server of aird holds for its
// clients: connections at once (in all and per peer: a uid on a unix
// socket, an IP address on TCP), and how long a connection may take to send
// its request or sit idle between requests. A connection beyond a cap gets
// a 503 and is closed at once, so it costs a moment, not a slot.
package httplimit
