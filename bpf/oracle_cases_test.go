package bpf

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// oracleCase is one output the oracle judges: the input, the verdict and
// the output (from the program, or the program's output altered by hand)
// and the start of the error it must report ("" = accepted).
type oracleCase struct {
	name    string
	in      []byte
	verdict uint32
	out     []byte
	err     string
}

// TestOracle proves the oracle FuzzXDP uses accepts what the program
// really sends for each kind of output, and catches each kind of wrong
// output made from it by hand.
func TestOracle(t *testing.T) {
	re := newRouterEnv(t)
	e := re.lbEnv
	programLB(t, e)
	var eps []Endpoint
	for _, ep := range re.endpoints {
		eps = append(eps, ep)
	}
	o := newOracle(e, eps)
	run := func(want uint32, in []byte) oracleCase {
		e.resetFlows(t)
		v, out := e.run(t, in, true)
		if v != want || bytes.Equal(in, out) {
			t.Fatalf("preparation: verdict %d (want %d), changed %v:\n in  %x\n out %x", v, want, !bytes.Equal(in, out), in, out)
		}
		return oracleCase{in: in, verdict: v, out: out}
	}
	alter := func(c oracleCase, name, err string, f func(out []byte) []byte) oracleCase {
		c.name, c.err, c.out = name, err, f(bytes.Clone(c.out))
		return c
	}
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte {
			if i < 0 {
				i += len(b)
			}
			b[i] ^= 1
			return b
		}
	}
	fwd6 := run(xdpTx, fromTor(tcp6(t, client6, 40000, 443, ack, 64, 20)))
	fwd4in6 := run(xdpTx, fromTor(tcp4(t, vip4, 50000, 80, ack, 64, 20)))
	fwd4in4 := run(xdpTx, fromTor(tcp4(t, vip4b, 50000, 80, ack, 64, 20)))
	noNeigh := run(xdpPass, fromTor(tcp6(t, client6, 40000, 8080, ack, 64, 20)))
	padded := run(xdpTx, append(fromTor(tcp6(t, client6, 40000, 443, ack, 64, 0)), make([]byte, 6)...))
	echoIP := ip6(client6, vip6, layers.IPProtocolICMPv6, 64)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	_ = ic.SetNetworkLayerForChecksum(echoIP)
	echo := run(xdpTx, fromTor(ipPacket(t, echoIP, ic, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, gopacket.Payload("ping"))))
	ptb := run(xdpTx, fromTor(tcp6(t, client6, 40000, 443, ack, 64, 1440)))
	tunnel := ip6("2001:db8:5::99", nodeAddr6.String(), layers.IPProtocolIPv6, 64)
	decap := run(xdpPass, fromTor(ipPacket(t, tunnel, gopacket.Payload(tcpTo6(t, served6)))))
	delivered := run(xdpRedirect, fromTor(tcpTo(t, client6, pod1, 64, 20)))
	delivered4 := run(xdpRedirect, fromTor(func() []byte {
		l3 := ip4(client4, pod14, layers.IPProtocolTCP, 64)
		return ipPacket(t, l3, tcpL(l3, 1, 2, ack), gopacket.Payload("x"))
	}()))
	ptb.name = "too big to encapsulate, ICMPv6 too big"
	cases := []oracleCase{
		named(fwd6, "ip6ip6 forward"), named(fwd4in6, "4in6 forward"), named(fwd4in4, "ipip forward"),
		named(noNeigh, "no neighbour: encapsulated, passed"), named(padded, "padded frame forwarded without its padding"),
		named(echo, "echo reply"), ptb, named(decap, "decapsulated to the node"),
		named(delivered, "delivered to an endpoint"), named(delivered4, "IPv4 delivered to an endpoint"),

		alter(fwd6, "inner bit flipped", "inner packet differs", flip(-1)),
		alter(fwd6, "inner hop limit not decremented", "inner packet differs", func(b []byte) []byte { b[14+40+7]++; return b }),
		alter(fwd6, "outer payload length one more", "outer IPv6 claims", func(b []byte) []byte { b[14+5]++; return b }),
		alter(fwd6, "outer source outside the prefix", "outer source", flip(14+8)),
		alter(fwd6, "outer next header 4 for an IPv6 inner", "outer next header", func(b []byte) []byte { b[14+6] = 4; return b }),
		alter(fwd6, "sent to the client's MAC", "sent back with MACs", flip(0)),
		alter(fwd4in6, "4in6 inner TTL checksum not updated", "IPv4 header checksum not updated", flip(14+40+10)),
		alter(fwd4in4, "ipip outer checksum broken", "outer IPv4 header checksum invalid", flip(14+10)),
		alter(padded, "padding kept inside the tunnel", "inner packet differs", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+4:], binary.BigEndian.Uint16(b[14+4:])+6)
			return append(b, make([]byte, 6)...)
		}),
		alter(noNeigh, "passed encapsulated with the gateway's MACs", "passed with MACs", func(b []byte) []byte { copy(b, o.txMACs); return b }),
		alter(echo, "echo reply checksum broken", "echo reply's ICMPv6 checksum", flip(14+42)),
		alter(echo, "echo reply data changed", "echo reply differs", flip(-1)),
		alter(ptb, "too big quote changed", "too-big message quotes", func(b []byte) []byte {
			b[len(b)-1] ^= 1
			b[14+43] ^= 1 // checksum still valid: one's complement of the flip
			return b
		}),
		alter(ptb, "too big checksum broken", "ICMPv6 too big checksum invalid", flip(14+42)),
		alter(decap, "decapsulated inner cut", "changed frame is not the inner packet", func(b []byte) []byte { return b[:len(b)-1] }),
		alter(delivered, "delivered without the hop limit decremented", "delivered packet differs", func(b []byte) []byte { b[14+7]++; return b }),
		alter(delivered4, "delivered IPv4 checksum not updated", "IPv4 header checksum not updated", flip(14+10)),
		{name: "TX of the unchanged frame", in: fwd6.in, verdict: xdpTx, out: fwd6.in, err: "verdict 3 for the unchanged frame"},
		{name: "unchanged frame passed", in: fwd6.in, verdict: xdpPass, out: fwd6.in},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkOracle(t, o, c) })
	}
}

func named(c oracleCase, name string) oracleCase { c.name = name; return c }

func checkOracle(t *testing.T, o *oracle, c oracleCase) {
	t.Helper()
	err := o.check(c.in, c.verdict, c.out)
	switch {
	case c.err == "" && err != nil:
		t.Fatalf("genuine output rejected: %v\n in  %x\n out %x", err, c.in, c.out)
	case c.err != "" && err == nil:
		t.Fatalf("wrong output accepted (want %q)\n in  %x\n out %x", c.err, c.in, c.out)
	case c.err != "" && !strings.Contains(err.Error(), c.err):
		t.Fatalf("error %q, want %q", err, c.err)
	}
}

// wrappedLengthObject is the last commit whose datapath forwarded an IPv6
// packet claiming a payload length of 65,535 (the parsed length wrapped
// to 39; fixed in the commit after it).
const wrappedLengthObject = "9df1444"

// TestOracleCatchesWrappedLength runs the frame that bug forwarded
// through that commit's object and the current one: the oracle rejects
// what the old object sent, and accepts the current verdict (a drop).
func TestOracleCatchesWrappedLength(t *testing.T) {
	obj, err := exec.Command("git", "show", wrappedLengthObject+":bpf/datapath_bpfel.o").Output()
	if err != nil {
		t.Fatalf("read %s's datapath object from git (a full checkout is needed): %v", wrappedLengthObject, err)
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	p := tcp6(t, client6, 40103, 443, ack, 64, 20)
	binary.BigEndian.PutUint16(p[4:], 0xffff)
	in := fromTor(p)
	for _, c := range []struct {
		name string
		spec *ebpf.CollectionSpec
		err  string
	}{
		{"object of " + wrappedLengthObject, spec, "encapsulated a packet that is not whole"},
		{"current object", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newLBEnvSpec(t, Config{MaxVIPs: 64, MaxBackends: bigBackendID, ConntrackSize: 4096}, c.spec)
			programLB(t, e)
			v, out := e.run(t, in, true)
			checkOracle(t, newOracle(e, nil), oracleCase{in: in, verdict: v, out: out, err: c.err})
		})
	}
}
