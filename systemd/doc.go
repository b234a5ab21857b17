// Package systemd holds aird's systemd unit (aird.service) and the test
// that verifies it with systemd-analyze. The unit's behaviour under a real
// systemd is exercised by integration/systemd_test.go.
package systemd
