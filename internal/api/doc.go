// Package api owns aird's local control API: JSON over HTTP on a unix socket
// (/run/aird/aird.sock, mode 0660), optionally also on a loopback TCP port.
// It defines the wire types, the server that routes requests to the daemon
// through the Backend interface, and the client airctl uses.
//
// Every response is JSON. Errors have a non-2xx status and a body of the form
// {"error": "...", "errors": [...]}; a request that fails changes nothing.
package api
