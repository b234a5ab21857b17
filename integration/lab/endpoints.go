package lab

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/aird-net/aird/internal/api"
)

// Endpoint is a container endpoint on a backend node (airctl endpoint add
// --netns --vip): a namespace with the node's pod addresses and both VIPs
// on its lo, running the lab's server.
type Endpoint struct {
	Name  string
	NS    string
	Node  *Node
	Addr6 netip.Addr // its pod address: the LB nodes' backend address
	proc  *Proc
}

// startBackends starts the backend nodes, adds their endpoints and starts
// a server in each.
func (l *Lab) startBackends() error {
	for _, n := range l.Nodes {
		if err := n.WriteConfig(); err != nil {
			return err
		}
		if err := n.Start(); err != nil {
			return err
		}
	}
	k := 0
	for _, n := range l.Nodes {
		for j := 0; j < l.opts.EndpointsPerNode; j++ {
			k++
			ep, err := l.AddEndpoint(n, fmt.Sprintf("web-%d", k))
			if err != nil {
				return err
			}
			l.Servers = append(l.Servers, ep)
		}
	}
	return nil
}

// AddEndpoint creates a namespace, makes it an endpoint of node n serving
// both VIPs with direct server return, and starts the server in it.
func (l *Lab) AddEndpoint(n *Node, name string) (*Endpoint, error) {
	ns, err := l.addNetns(name[:min(len(name), 6)])
	if err != nil {
		return nil, err
	}
	var ep api.Endpoint
	if err := n.AirctlJSON(&ep, "endpoint", "add", name, "--netns", "/run/netns/"+ns, "--vip", VIP6, "--vip", VIP4); err != nil {
		return nil, err
	}
	e := &Endpoint{Name: name, NS: ns, Node: n}
	for _, a := range ep.Addresses {
		if a.Is6() {
			e.Addr6 = a
		}
	}
	if !e.Addr6.IsValid() {
		return nil, fmt.Errorf("endpoint %s got no IPv6 address: %v", name, ep.Addresses)
	}
	if err := e.StartServer(); err != nil {
		return nil, err
	}
	return e, nil
}

// StartServer runs the lab's server in the endpoint (again).
func (e *Endpoint) StartServer() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	l := e.Node.lab
	p, err := l.start("server-"+e.Name, []string{ServeEnv + "=" + e.Name}, "nsenter", "--net=/run/netns/"+e.NS, self)
	if err != nil {
		return err
	}
	e.proc = p
	if !waitFor(10*time.Second, func() bool {
		out, _ := run("ip", "netns", "exec", e.NS, "ss", "-Hltn", fmt.Sprintf("sport = :%d", PortTCP))
		return out != "" || !p.Alive()
	}) || !p.Alive() {
		b, _ := os.ReadFile(p.Log)
		return fmt.Errorf("server in %s did not start:\n%s", e.Name, b)
	}
	return nil
}

// StopServer kills the endpoint's server: its backend fails its health
// checks (connections refused).
func (e *Endpoint) StopServer() {
	if e.proc != nil {
		e.proc.Kill()
	}
}

// Backends returns the endpoints' pod addresses, the LB nodes' backends.
func (l *Lab) Backends() []string {
	var bs []string
	for _, e := range l.Servers {
		bs = append(bs, e.Addr6.String())
	}
	return bs
}
