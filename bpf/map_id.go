package bpf

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// mapInfoHead is the head of struct bpf_map_info: the fields up to the
// value size, all that aird asks the kernel for (it copies as much as
// asked for).
type mapInfoHead struct{ typ, id, keySize, valueSize uint32 }

// readMapInfoHead asks the kernel for the head of the info of the map
// behind fd with one BPF_OBJ_GET_INFO_BY_FD. (*ebpf.Map).Info also reads
// /proc/self/fdinfo, which for 10,000 Maglev tables cost about half a
// second of a start.
func readMapInfoHead(fd int) (mapInfoHead, error) {
	var info mapInfoHead
	attr := struct {
		fd, infoLen uint32
		info        uint64
	}{fd: uint32(fd), infoLen: uint32(unsafe.Sizeof(info)), info: uint64(uintptr(unsafe.Pointer(&info)))}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET_INFO_BY_FD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return mapInfoHead{}, fmt.Errorf("map info: %w", errno)
	}
	return info, nil
}

// mapID returns the kernel's id of m (readMapInfoHead).
func mapID(m *ebpf.Map) (ebpf.MapID, error) {
	info, err := readMapInfoHead(m.FD())
	runtime.KeepAlive(m) // its finalizer must not close the fd during the syscall
	if err != nil {
		return 0, err
	}
	return ebpf.MapID(info.id), nil
}

// PinnedTableID returns the map id of the Maglev table pinned at path
// without keeping a handle: one BPF_OBJ_GET, one BPF_OBJ_GET_INFO_BY_FD
// for the head of struct bpf_map_info, one close. LoadPinnedTable also
// reads /proc/self/fd and asks for the whole info, twice the syscalls for
// an id that adopting 10,000 pinned tables needs alone. ok is false when
// the pin is not a table of this layout (an array of 4-byte keys and
// maglevBlockBytes values).
func PinnedTableID(path string) (id ebpf.MapID, ok bool, err error) {
	name, err := unix.BytePtrFromString(path)
	if err != nil {
		return 0, false, fmt.Errorf("open pinned maglev table: %w", err)
	}
	get := struct {
		pathname  uint64
		bpfFD     uint32
		fileFlags uint32
	}{pathname: uint64(uintptr(unsafe.Pointer(name))), fileFlags: unix.BPF_F_RDONLY}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET, uintptr(unsafe.Pointer(&get)), unsafe.Sizeof(get))
	runtime.KeepAlive(name)
	if errno != 0 {
		return 0, false, fmt.Errorf("open pinned maglev table %s: %w", path, errno)
	}
	defer unix.Close(int(fd))
	info, err := readMapInfoHead(int(fd))
	if err != nil {
		return 0, false, fmt.Errorf("pinned maglev table %s: %w", path, err)
	}
	if info.typ != uint32(ebpf.Array) || info.keySize != 4 || info.valueSize != maglevBlockBytes {
		return 0, false, nil
	}
	return ebpf.MapID(info.id), true, nil
}
