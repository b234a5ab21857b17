package bgp

import (
	"fmt"
	"strings"
)

// grBIRDConf is the ToR of the graceful-restart tests: BIRD exporting a
// default route to node AS 65001, graceful restart on for 60 s, with
// extra BIRD statements in its protocol and top before it.
func grBIRDConf(extra, top string) func(torSpec) string {
	return birdConf(birdOpts{nodeAS: 65001, export: "where source = RTS_STATIC", statics: []string{"::/0"},
		extra: "graceful restart on; graceful restart time 60;" + extra, top: top})
}

// grPeer is one ToR peer of grNodeTOML: importing the default route,
// with extra TOML lines in its table (after asn).
type grPeer struct {
	name, addr string
	asn        uint32
	extra      string
}

// grNodeTOML is the node of the graceful-restart tests: nodeTOML, AS
// 65001 with a 1 s connect retry and graceful restart (30 s), and peers,
// each importing ::/0; tail is appended after the last peer's import
// table (e.g. its [bgp.peers.bfd]).
func grNodeTOML(l labSpec, tail string, peers ...grPeer) string {
	var b strings.Builder
	b.WriteString(nodeTOML(l))
	b.WriteString("\n[bgp]\nasn = 65001\nconnect-retry = \"1s\"\n[bgp.graceful-restart]\nenabled = true\nrestart-time = \"30s\"\n")
	for _, p := range peers {
		fmt.Fprintf(&b, "[[bgp.peers]]\nname = %q\naddress = %q\nasn = %d\n%s[bgp.peers.import]\nprefixes = [\"::/0\"]\n",
			p.name, p.addr, p.asn, p.extra)
	}
	b.WriteString(tail)
	return b.String()
}
