package bpf

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// mapID returns the kernel's id of m with one BPF_OBJ_GET_INFO_BY_FD that
// asks for the first two fields of struct bpf_map_info only (type and
// id; the kernel copies as much as asked for). (*ebpf.Map).Info also reads
// /proc/self/fdinfo, which for 10,000 Maglev tables cost about half a
// second of a start.
func mapID(m *ebpf.Map) (ebpf.MapID, error) {
	var info struct{ typ, id uint32 }
	attr := struct {
		fd, infoLen uint32
		info        uint64
	}{fd: uint32(m.FD()), infoLen: uint32(unsafe.Sizeof(info)), info: uint64(uintptr(unsafe.Pointer(&info)))}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET_INFO_BY_FD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return 0, fmt.Errorf("map info: %w", errno)
	}
	return ebpf.MapID(info.id), nil
}
