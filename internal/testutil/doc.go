// Package testutil holds plumbing shared by aird's tests: the rule for
// privileged tests (skip loudly when not root, fail when AIRD_TEST_PRIVILEGED=1),
// network namespaces with veth pairs that clean up after themselves, and
// building the aird and airctl binaries once per test binary.
package testutil
