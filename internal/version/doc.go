// Package version reports what build of aird is running, from the build
// information the Go toolchain embeds (module version and VCS revision), so
// no linker flags are needed.
package version
