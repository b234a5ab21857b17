// Package metrics owns aird's Prometheus registry and its HTTP endpoint:
// build information, configuration reload outcomes, and collectors that read
// data-plane counters from BPF maps at scrape time (never cached copies).
package metrics
