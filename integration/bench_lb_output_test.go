package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The live benchmark checks what every LB node sends before it measures
// it: a sink program that keeps the last frame's bytes replaces the
// counting one for a short burst, and the frame is decoded and compared
// with what that node should make of the generator's frame. A node that
// forwarded the wrong bytes (or fewer) would otherwise be measured as
// fast as a correct one.

const (
	encapFrame = 64 + 40 // the generator's frame in an outer IPv6 header
	captureOff = 8       // the frame's bytes in the capture value, after its length
)

// capturingDrop is an XDP program that copies the frame (its first 104
// bytes, else its first 64) into the returned map's single value, its
// length in the first word, and drops it.
func capturingDrop(t *testing.T) (*ebpf.Program, *ebpf.Map) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: captureOff + encapFrame, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	load := func(n int32, next string) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Reg(asm.R3, asm.R7),
			asm.Add.Imm(asm.R3, captureOff),
			asm.Mov.Imm(asm.R4, n),
			asm.FnXdpLoadBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, next),
			asm.StoreImm(asm.R7, 0, int64(n), asm.Word),
			asm.Ja.Label("drop"),
		}
	}
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Reg(asm.R7, asm.R0),
	}
	ins = append(ins, load(encapFrame, "short")...)
	short := load(64, "drop")
	short[0] = short[0].WithSymbol("short")
	ins = append(ins, short...)
	ins = append(ins, asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), asm.Return()) // XDP_DROP
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: ins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, m
}

// checkOutput sends a short burst of the chain's generator (new flows or
// established) through the LB node with the capturing sink attached,
// checks the last frame the sink got, and puts the counting sink back.
func (c *lbChain) checkOutput(t *testing.T, newf bool, cpu int) {
	t.Helper()
	prog, m := capturingDrop(t)
	attachXDP(t, c.sink, "eth0", prog)
	defer attachXDP(t, c.sink, "eth0", c.sinkProg)
	if err := m.Put(uint32(0), make([]byte, captureOff+encapFrame)); err != nil {
		t.Fatal(err)
	}
	g := c.gen[newf]
	g.run(t, cpu, func(send func(n uint32)) { send(1 << 12) })
	// The LB's NAPI thread may not have run yet on a loaded machine.
	var v []byte
	var n int
	for deadline := time.Now().Add(5 * time.Second); n == 0; time.Sleep(20 * time.Millisecond) {
		if err := m.Lookup(uint32(0), &v); err != nil {
			t.Fatal(err)
		}
		if n = int(v[0]) | int(v[1])<<8; n == 0 && time.Now().After(deadline) {
			t.Fatalf("%s (%s flows): the sink got no frame", c.name, flowKind(newf))
		}
	}
	if err := c.want.check(v[captureOff:captureOff+n], g.frame, newf); err != nil {
		t.Fatalf("%s (%s flows) sent the wrong frame: %v\n% x", c.name, flowKind(newf), err, v[captureOff:captureOff+n])
	}
}

// outputWant is what an LB node must send for the generator's frame.
type outputWant struct {
	dstMAC, srcMAC net.HardwareAddr
	encap          bool         // IPv6-in-IPv6 to a backend
	outerSrc       netip.Addr   // encap: the outer source, when fixed (the floor's)
	backends       []netip.Addr // encap: the outer destination; else the inner one (DNAT)
	dnat           bool         // the inner destination is a backend (nftables)
	decHop         bool         // the inner hop limit is one less (a router's, aird's, nftables')
}

// check compares frame with what the generator's frame gen must become;
// new flows randomize the inner source and port, which are not compared.
func (w outputWant) check(frame, gen []byte, newf bool) error {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return fmt.Errorf("not Ethernet")
	}
	if !bytes.Equal(eth.DstMAC, w.dstMAC) || !bytes.Equal(eth.SrcMAC, w.srcMAC) {
		return fmt.Errorf("MACs %s <- %s, want %s <- %s", eth.DstMAC, eth.SrcMAC, w.dstMAC, w.srcMAC)
	}
	inner := frame[14:]
	if w.encap {
		if len(frame) != encapFrame {
			return fmt.Errorf("%d bytes, want %d", len(frame), encapFrame)
		}
		outer, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if outer == nil || outer.NextHeader != layers.IPProtocolIPv6 || outer.Length != 64-14 || outer.HopLimit != 64 {
			return fmt.Errorf("outer header %+v, want IPv6-in-IPv6, length 50, hop limit 64", outer)
		}
		if dst, _ := netip.AddrFromSlice(outer.DstIP); !containsAddr(w.backends, dst) {
			return fmt.Errorf("outer destination %s, want one of %v", dst, w.backends)
		}
		if src, _ := netip.AddrFromSlice(outer.SrcIP); w.outerSrc.IsValid() && src != w.outerSrc {
			return fmt.Errorf("outer source %s, want %s", src, w.outerSrc)
		}
		inner = frame[14+40:]
	} else if len(frame) != 64 {
		return fmt.Errorf("%d bytes, want 64", len(frame))
	}
	want := bytes.Clone(gen[14:])
	if w.decHop {
		want[7]--
	}
	if w.dnat {
		dst, _ := netip.AddrFromSlice(inner[24:40])
		if !containsAddr(w.backends, dst) {
			return fmt.Errorf("inner destination %s, want one of %v", dst, w.backends)
		}
		copy(want[24:40], inner[24:40])
		copy(want[40+6:40+8], inner[40+6:40+8]) // the UDP checksum NAT updated
	}
	if newf { // the generator's random source address word and port
		copy(want[20:24], inner[20:24])
		copy(want[40:42], inner[40:42])
	}
	if !bytes.Equal(inner, want) {
		return fmt.Errorf("inner packet\n% x\nwant\n% x", inner, want)
	}
	return nil
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}
