// Package api owns aird's local control API: JSON over HTTP on a unix socket
// (/run/aird/aird.sock, mode 0660), and only there. Whoever can connect may
// read; a request that changes state (any method but GET and HEAD) is taken
// only from root or a member of the socket's group, as the kernel reports
// the peer (SO_PEERCRED, SO_PEERGROUPS), and only as application/json.
// Connections are capped per peer uid and in all, and time out
// (internal/httplimit). It defines the wire types, the server that routes
// requests to the daemon through the Backend interface, and the client
// airctl uses.
//
// Every response is JSON. Errors have a non-2xx status and a body of the form
// {"error": "...", "errors": [...]}; a request that fails changes nothing.
package api
