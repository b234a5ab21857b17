// Package health probes load-balancer backends and reports when one changes
// between healthy and unhealthy.
//
// A target is its Spec: equal specs (a direct TCP check of one backend
// used by many services) are one target with one prober goroutine. Every
// interval it runs one check (TCP connect, HTTP GET with an expected status
// range, or none), bounded by the timeout. A healthy target turns unhealthy
// after `fall` consecutive failures; an unhealthy one turns healthy after
// `rise` consecutive successes. Targets start healthy: a reload must not
// withdraw VIPs or move flows before it has any evidence, and a target that
// is down is caught after `fall` intervals. Targets added "unknown" (a
// restarted aird, whose data plane still holds the earlier process's view)
// are decided by their first success, or by `fall` consecutive failures.
//
// How a probe reaches its backend is the caller's choice, through the Spec
// (destination, source address, socket mark) and the Dialer: the load
// balancer dials the VIP from the node's underlay address with a socket mark
// that makes the data plane encapsulate the probe to one backend, so a probe
// travels the same tunnel as data packets and a broken tunnel counts as
// unhealthy. Status reports the path (Via) and, when a check meant for the
// tunnel goes direct, why (Fallback).
package health
