package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runAird(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestExitStatuses(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[log]\nlevel = \"loud\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--version"}, 0, "aird "},
		{[]string{"--check-config", "../../configs/aird.toml"}, 0, "configuration is valid"},
		{[]string{"--check-config", bad}, 1, bad + ":2:1: log.level"},
		{[]string{"--check-config", filepath.Join(t.TempDir(), "none.toml")}, 1, "no such file"},
		{[]string{"--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"stray"}, 2, `unknown command "stray"`},
		{[]string{"--version", "--cleanup"}, 2, "none of the others can be"},
	} {
		out, errs, code := runAird(tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("aird %v: exit %d, want %d; output %q, want %q", tc.args, code, tc.code, out+errs, tc.out)
		}
	}
}

func TestHelpListsFlagsNotHiddenOnes(t *testing.T) {
	out, _, code := runAird("--help")
	if code != 0 || !strings.Contains(out, "--check-config") || !strings.Contains(out, "--cleanup") || strings.Contains(out, "gen-docs") {
		t.Fatalf("aird --help: exit %d\n%s", code, out)
	}
}
