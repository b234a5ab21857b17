// Package integration holds aird's end-to-end tests: the real aird and
// airctl binaries run in network namespaces on veth links (and under a real
// systemd in a container), driven the way an operator drives them. The demo
// (demo/demo.sh), the dependency installer (deps.sh) and the test entry
// point (test.sh) live here too.
package integration
