// Package daemon wires aird together and owns its lifecycle: it loads the
// configuration, starts each component (logging, data plane, metrics, API),
// tells systemd what it is doing (sd_notify READY, RELOADING, STOPPING,
// STATUS, WATCHDOG), applies reloads as a transaction and stops cleanly.
//
// Reload is all-or-nothing. The new file is loaded and validated first; a bad
// file changes nothing. Then only the components whose sections changed are
// asked to apply the difference; if one fails, those already changed are
// rolled back to the running configuration, which stays in force.
//
// Stopping releases file descriptors and sockets but does not tear down what
// the node forwards with: pinned XDP links and maps stay in bpffs, so traffic
// keeps flowing while aird restarts and the next process adopts them.
// Teardown is explicit (aird --cleanup).
package daemon
