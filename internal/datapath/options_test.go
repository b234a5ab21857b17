package datapath

import (
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		err  string // substring; empty means valid
	}{
		{Options{PinPath: "/sys/fs/bpf/aird", XDPMode: "auto"}, ""},
		{Options{PinPath: "/sys/fs/bpf/aird", XDPMode: "native"}, ""},
		{Options{PinPath: "/sys/fs/bpf/x/y", XDPMode: "generic"}, ""},
		{Options{PinPath: "", XDPMode: "auto"}, "pin path is empty"},
		{Options{PinPath: "sys/fs/bpf/aird", XDPMode: "auto"}, "not absolute"},
		{Options{PinPath: "/sys/fs/bpf/aird/", XDPMode: "auto"}, "not clean"},
		{Options{PinPath: "/sys/fs/bpf", XDPMode: "auto"}, "directory of its own"},
		{Options{PinPath: "/", XDPMode: "auto"}, "directory of its own"},
		{Options{PinPath: "/sys/fs/bpf/aird", XDPMode: ""}, `xdp mode ""`},
		{Options{PinPath: "/sys/fs/bpf/aird", XDPMode: "offload"}, `xdp mode "offload"`},
	} {
		err := tc.opts.validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.opts, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want one containing %q", tc.opts, err, tc.err)
		}
	}
}

func TestUplinkNames(t *testing.T) {
	got, err := uplinkNames([]string{"eth1", "eth0", "eth1"})
	if err != nil || strings.Join(got, ",") != "eth0,eth1" {
		t.Fatalf("uplinkNames = %v, %v; want [eth0 eth1]", got, err)
	}
	for _, bad := range []string{"", "a/b", "..", "sixteen-bytes-xx", "a b"} {
		if _, err := uplinkNames([]string{bad}); err == nil {
			t.Errorf("uplinkNames(%q): no error", bad)
		}
	}
}

func TestPinNameEscaping(t *testing.T) {
	for _, name := range []string{"eth0", "eth0.100", "a%2eb", "%", "x.%.y"} {
		esc := escapePinName(name)
		if strings.Contains(esc, ".") {
			t.Errorf("escapePinName(%q) = %q contains a dot", name, esc)
		}
		if back := unescapePinName(esc); back != name {
			t.Errorf("unescapePinName(escapePinName(%q)) = %q", name, back)
		}
	}
}
