// Package version reports what build of aird is running. `make build` and
// `make deb` stamp the version and the git revision with -ldflags -X (see
// packaging/version.sh); a plain `go build` falls back to what the Go
// toolchain embeds (module version, VCS revision) and reports "devel".
package version
