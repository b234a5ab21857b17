package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// ServeEnv, set to a name, makes a binary that calls ServeIfAsked the
// lab's backend server under that name (the lab starts it this way in each
// endpoint's namespace: airdlab itself, or the test binary).
const ServeEnv = "AIRD_LAB_SERVE"

// ServeIfAsked runs the server and exits when ServeEnv is set; it returns
// at once otherwise. Call it first thing in main (or TestMain).
func ServeIfAsked() {
	name := os.Getenv(ServeEnv)
	if name == "" {
		return
	}
	if err := serve(name); err != nil {
		fmt.Fprintf(os.Stderr, "lab server %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve answers on every address of the namespace: HTTP on PortHTTP (the
// body is the name and a newline), TCP on PortTCP (the name, then every
// line echoed), UDP on PortUDP of each address it has at start (each
// datagram answered with the name), until SIGTERM.
func serve(name string) error {
	hl, err := net.Listen("tcp", ":"+strconv.Itoa(PortHTTP))
	if err != nil {
		return err
	}
	tl, err := net.Listen("tcp", ":"+strconv.Itoa(PortTCP))
	if err != nil {
		return err
	}
	// One UDP socket per address, so that each answer leaves from the
	// address the datagram was sent to - the VIP, under direct server
	// return - and not from whatever the route to the client prefers.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	var uls []net.PacketConn
	for _, a := range addrs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLinkLocalUnicast() || ip.IP.IsLoopback() {
			continue
		}
		ul, err := net.ListenPacket("udp", net.JoinHostPort(ip.IP.String(), strconv.Itoa(PortUDP)))
		if err != nil {
			return err
		}
		uls = append(uls, ul)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintln(w, name)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	errc := make(chan error, 2+len(uls))
	go func() { errc <- srv.Serve(hl) }()
	go func() { errc <- echoServe(tl, name) }()
	for _, ul := range uls {
		go func() { errc <- udpServe(ul, name) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errc:
		return err
	case <-sig:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		return nil
	}
}

func echoServe(l net.Listener, name string) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			fmt.Fprintln(c, name)
			r := bufio.NewReader(c)
			for {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := c.Write([]byte(line)); err != nil {
					return
				}
			}
		}()
	}
}

func udpServe(c net.PacketConn, name string) error {
	buf := make([]byte, 2048)
	reply := []byte(name + "\n")
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		_, _ = c.WriteTo(reply, from)
	}
}
