package router

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool commands (linux/ethtool.h) that take a struct
// ethtool_value.
const (
	ethtoolSTXCSUM = 0x00000017 // set transmit checksum offload
	ethtoolSGRO    = 0x0000002c // set generic receive offload
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// ethtoolSet runs one ethtool set command on dev, in the network namespace
// of the calling thread.
func ethtoolSet(dev string, cmd, val uint32) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool %s: %w", dev, err)
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: cmd, data: val}
	var ifr ifreqData
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(v)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("ethtool %s command %#x: %w", dev, cmd, errno)
	}
	return nil
}

// prepareForXDP sets the offloads a link needs to receive frames that XDP
// redirects into it and to send frames XDP forwards raw: GRO on (a veth
// runs NAPI, and so receives redirected frames, only with GRO or an XDP
// program), transmit checksumming off (a frame XDP forwards is sent as it
// is, so its checksum must be complete).
func prepareForXDP(dev string) error {
	if err := ethtoolSet(dev, ethtoolSGRO, 1); err != nil {
		return err
	}
	return ethtoolSet(dev, ethtoolSTXCSUM, 0)
}
