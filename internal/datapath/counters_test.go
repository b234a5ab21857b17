package datapath

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/lb"
)

// synFrame is a TCP SYN from client:sport to vip:443 with payload bytes.
func synFrame(t *testing.T, client, vip netip.Addr, sport uint16, payload int) []byte {
	t.Helper()
	return tcpFrame(t, client, vip, sport, true, payload)
}

// tcpFrame is a TCP SYN (syn) or ACK from client:sport to vip:443 with
// payload bytes.
func tcpFrame(t *testing.T, client, vip netip.Addr, sport uint16, syn bool, payload int) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: client.AsSlice(), DstIP: vip.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 443, SYN: syn, ACK: !syn, Window: 65535, DataOffset: 5}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv6}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(bytes.Repeat([]byte{0x5a}, payload))); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// onCPU runs f with the calling (locked) thread pinned to cpu.
func onCPU(t *testing.T, cpu int, f func()) {
	t.Helper()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &old) }()
	f()
}

func allowedCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// TestLBTrafficCounters pushes packets through the loaded program, spread
// over CPUs, to a service programmed by lb.Programmer, and reads the
// per-VIP and per-backend counters back through the ids the programmer
// assigned: exactly the packets and bytes sent, split by the Maglev choice.
func TestLBTrafficCounters(t *testing.T) {
	testutil.RequirePrivileged(t)
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	d, err := Open(Options{PinPath: pin, XDPMode: ModeAuto, MaxVIPs: 64, MaxBackends: 64, ConntrackSize: 4096, Logger: testLogger(&syncBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	maps, err := d.LBMaps()
	if err != nil {
		t.Fatal(err)
	}
	const seed = 0x5eed
	if err := d.SetSettings(bpf.Settings{Src6: netip.MustParsePrefix("2001:db8:5::1/128"), HashSeed: seed}); err != nil {
		t.Fatal(err)
	}
	p := lb.NewProgrammer(maps, lb.ProgrammerOptions{})
	m, err := lb.New(context.Background(), lb.Options{OnServing: func([]netip.Addr) {}, Dataplane: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	vip, client := netip.MustParseAddr("2001:db8:100::1"), netip.MustParseAddr("2001:db8:c0::5")
	backends := func(addrs ...string) []lb.Backend {
		var out []lb.Backend
		for _, a := range addrs {
			out = append(out, lb.Backend{Address: netip.MustParseAddr(a), Weight: 100})
		}
		return out
	}
	none := lb.HealthCheck{Type: "none"}
	services := []lb.Service{
		{Name: "web", VIP: vip, Port: 443, Protocol: "tcp", Backends: backends("2001:db8:be::1", "2001:db8:be::2", "2001:db8:be::3"), HealthCheck: none},
		{Name: "dns", VIP: vip, Port: 53, Protocol: "udp", Backends: backends("2001:db8:be::53"), HealthCheck: none},
	}
	if err := m.Apply(lb.Config{Services: services, MaglevTableSize: 251}); err != nil {
		t.Fatal(err)
	}
	ids := m.IDs(nil, true)
	if len(ids) != 2 || ids[0].Name != "web" || len(ids[0].Backends) != 3 || len(ids[1].Backends) != 1 {
		t.Fatalf("ids: %+v", ids)
	}
	web, dns := ids[0], ids[1]

	tab, err := bpf.NewLB(maps).ReadTable(web.VIPID)
	if err != nil {
		t.Fatal(err)
	}
	table := tab.IDs()
	cpus := allowedCPUs(t)
	const n = 300
	var wantVIP bpf.DatapathCounter
	wantBE := map[uint32]bpf.DatapathCounter{}
	ns := testutil.NewNetns(t, "dpc")
	testutil.InNetns(t, ns, func() {
		for i := range n {
			sport := uint16(20000 + i)
			in := synFrame(t, client, vip, sport, i%97)
			k := bpf.NewFlowKey(client, vip, sport, 443, 6)
			id := table[bpf.MaglevSlot(bpf.FlowHash(&k, seed), uint32(len(table)))]
			var err error
			onCPU(t, cpus[i%len(cpus)], func() {
				_, err = d.prog.Run(&ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+512), Repeat: 1})
			})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			wantVIP.Packets++
			wantVIP.Bytes += uint64(len(in))
			c := wantBE[id]
			c.Packets++
			c.Bytes += uint64(len(in))
			wantBE[id] = c
		}
	})
	if len(wantBE) < 2 {
		t.Fatalf("the flows all went to one backend (%v): the test proves nothing", wantBE)
	}

	vc, err := p.VIPCounters([]uint32{web.VIPID, dns.VIPID})
	if err != nil {
		t.Fatal(err)
	}
	if vc[web.VIPID] != wantVIP || vc[dns.VIPID] != (bpf.DatapathCounter{}) {
		t.Fatalf("vip counters: web %+v (want %+v), dns %+v (want zero)", vc[web.VIPID], wantVIP, vc[dns.VIPID])
	}
	var beIDs []uint32
	for _, s := range ids {
		for _, b := range s.Backends {
			beIDs = append(beIDs, b.ID)
		}
	}
	bc, err := p.BackendCounters(beIDs)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range web.Backends {
		if bc[b.ID] != wantBE[b.ID] {
			t.Errorf("backend %s (id %d): %+v, want %+v", b.Address, b.ID, bc[b.ID], wantBE[b.ID])
		}
	}
	if c := bc[dns.Backends[0].ID]; c != (bpf.DatapathCounter{}) {
		t.Errorf("backend of another service counted %+v", c)
	}
	if _, err := p.VIPCounters([]uint32{64}); err == nil {
		t.Error("VIPCounters read a vip id beyond the map")
	}
}
