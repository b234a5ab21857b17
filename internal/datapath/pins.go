package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// bpffsRoot is where aird expects the BPF filesystem to be mounted.
const bpffsRoot = "/sys/fs/bpf"

// linkPinPrefix starts the name of every pinned XDP link.
const linkPinPrefix = "xdp_"

// probeLinkPinPrefix starts the name of the pinned tcx link of the probe
// program.
const probeLinkPinPrefix = "tcx_"

// pins knows the layout under the pin path.
type pins struct {
	root string
}

func (p pins) mapsDir() string   { return filepath.Join(p.root, "maps") }
func (p pins) tablesDir() string { return filepath.Join(p.root, "tables") }
func (p pins) linksDir() string  { return filepath.Join(p.root, "links") }

func (p pins) mapPath(name string) string {
	return filepath.Join(p.mapsDir(), name)
}

func (p pins) linkPath(ifname string) string {
	return filepath.Join(p.linksDir(), linkPinPrefix+escapePinName(ifname))
}

func (p pins) probeLinkPath(ifname string) string {
	return filepath.Join(p.linksDir(), probeLinkPinPrefix+escapePinName(ifname))
}

// bpffs refuses names containing '.', which interface names (eth0.100) may
// have: pin names escape '%' as %25 and '.' as %2e.
func escapePinName(s string) string {
	return strings.NewReplacer("%", "%25", ".", "%2e").Replace(s)
}

func unescapePinName(s string) string {
	return strings.NewReplacer("%2e", ".", "%25", "%").Replace(s)
}

// ensure creates the directories and checks they are on a bpffs.
func (p pins) ensure() error {
	for _, dir := range []string{p.root, p.mapsDir(), p.linksDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create pin directory (is bpffs mounted at %s?): %w", bpffsRoot, err)
		}
	}
	if err := checkBPFFS(p.root); err != nil {
		return err
	}
	return nil
}

// linkPins returns the interface names of the pinned XDP links, from the
// file names in the links directory. A missing directory has none.
func (p pins) linkPins() ([]string, error) { return p.pinsWithPrefix(linkPinPrefix) }

// probeLinkPins returns the interface names of pinned probe links.
func (p pins) probeLinkPins() ([]string, error) { return p.pinsWithPrefix(probeLinkPinPrefix) }

func (p pins) pinsWithPrefix(prefix string) ([]string, error) {
	entries, err := os.ReadDir(p.linksDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pinned links: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutPrefix(e.Name(), prefix); ok && name != "" {
			names = append(names, unescapePinName(name))
		}
	}
	return names, nil
}

func checkBPFFS(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	if uint32(st.Type) != uint32(unix.BPF_FS_MAGIC) {
		return fmt.Errorf("%s is not on a bpf filesystem (mount -t bpf bpf %s)", path, bpffsRoot)
	}
	return nil
}

// pinReplace pins an object at path, atomically replacing whatever is
// pinned there: pin under a temporary name, then rename over path.
func pinReplace(pin func(string) error, path string) error {
	tmp := path + "%new" // '%' never occurs in map names
	_ = os.Remove(tmp)
	if err := pin(tmp); err != nil {
		return fmt.Errorf("pin %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename pin to %s: %w", path, err)
	}
	return nil
}

// removePin unpins path; a missing pin is fine.
func removePin(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}
