package lab

import (
	"bufio"
	"context"

	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Traffic kinds.
const (
	HTTP = "http" // a new connection per request: GET /, the body names the backend
	TCP  = "tcp"  // a new connection per request: the backend's name, one echo
	UDP  = "udp"  // a new socket (source port) per request: one datagram and its answer
)

// Load is a bounded traffic run from the client namespace: Requests in
// all (or as many as fit in Duration), over Workers concurrent workers.
type Load struct {
	Kind     string
	VIP      string        // VIP6 or VIP4
	Requests int           // total; 0: until Duration ends
	Duration time.Duration // upper bound of the run (default 1 minute)
	Workers  int           // default 8
	Timeout  time.Duration // per request (default 2s)
	// Pause between a worker's requests (none by default).
	Pause time.Duration
	// Done, when set, counts the requests completed (either way) as they
	// complete, for a caller that watches a run in progress.
	Done *atomic.Int64
}

// Result counts a run's requests by the backend that answered.
type Result struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	OK     int    `json:"ok"`
	Failed int    `json:"failed"`
	// Cut counts requests the end of the run interrupted (neither).
	Cut        int            `json:"cut"`
	PerBackend map[string]int `json:"per_backend"`
	Errors     []string       `json:"errors,omitempty"` // the first few
	// Failures describes the first few failed requests as the client's
	// kernel saw them (TCP); Causes counts all the failed TCP requests by
	// cause (CauseLost, CauseClient, CauseServer, CauseReset).
	Failures []Failure      `json:"failures,omitempty"`
	Causes   map[string]int `json:"causes,omitempty"`
	// SynRetrans counts the TCP requests whose SYN the client's kernel
	// sent more than once (a SYN or its SYN-ACK lost, or later than the
	// 1 s retransmission timeout), failed or not.
	SynRetrans int `json:"syn_retrans"`
	// Retransmitted counts the TCP requests that succeeded although the
	// client's kernel sent one of their segments after the handshake again
	// (a tail loss probe or a retransmission: a segment or its ACK lost, or
	// late); Retrans describes the first 100 of them.
	Retransmitted int           `json:"retransmitted"`
	Retrans       []RetransSpan `json:"retrans,omitempty"`
	// Stall is the longest the client process could not run: the worst
	// lateness of a 10 ms sleep during the run; StallEnd when it ended.
	Stall    time.Duration `json:"stall"`
	StallEnd time.Time     `json:"stall_end"`
	Elapsed  time.Duration `json:"elapsed"`
	// MaxGap is the longest time without a request completing
	// successfully (from the start, between successes, to the end).
	MaxGap time.Duration `json:"max_gap"`
	// GapEnd is when that longest gap ended.
	GapEnd time.Time `json:"gap_end"`
}

func (r Result) String() string {
	names := make([]string, 0, len(r.PerBackend))
	for n := range r.PerBackend {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, r.PerBackend[n]))
	}
	s := fmt.Sprintf("%s %s: %d ok, %d failed in %.1fs (longest gap %s; SYN retransmitted for %d, a later segment for %d; client stalled up to %s, until %s) [%s]",
		r.Kind, r.Target, r.OK, r.Failed, r.Elapsed.Seconds(), r.MaxGap.Round(time.Millisecond), r.SynRetrans, r.Retransmitted,
		r.Stall.Round(time.Millisecond), r.StallEnd.Format("15:04:05.000"), strings.Join(parts, ", "))
	if len(r.Errors) > 0 {
		s += "\n  errors: " + strings.Join(r.Errors, "\n          ")
	}
	if len(r.Failures) > 0 {
		fs := make([]string, len(r.Failures))
		for i, f := range r.Failures {
			fs[i] = f.String()
		}
		s += fmt.Sprintf("\n  failed by cause %v:\n    %s", r.Causes, strings.Join(fs, "\n    "))
	}
	return s
}

func (o *Load) defaults() error {
	switch o.Kind {
	case HTTP, TCP, UDP:
	default:
		return fmt.Errorf("traffic kind %q: want http, tcp or udp", o.Kind)
	}
	if o.Duration == 0 {
		o.Duration = time.Minute
	}
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Requests < 0 || o.Workers < 1 || o.Workers > 256 || o.Duration > 30*time.Minute {
		return fmt.Errorf("traffic: %d requests, %d workers, %s: want requests >= 0, 1-256 workers, at most 30m", o.Requests, o.Workers, o.Duration)
	}
	return nil
}

func port(kind string) int {
	switch kind {
	case HTTP:
		return PortHTTP
	case TCP:
		return PortTCP
	}
	return PortUDP
}

// Traffic runs o from the client namespace and returns the counts. It
// stops at o.Requests, at o.Duration, or when ctx ends.
func (l *Lab) Traffic(ctx context.Context, o Load) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	target := net.JoinHostPort(o.VIP, strconv.Itoa(port(o.Kind)))
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var (
		mu   sync.Mutex
		res  = Result{Kind: o.Kind, Target: target, PerBackend: map[string]int{}}
		seen = map[string]bool{}
		left = o.Requests
		wg   sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if o.Requests == 0 {
			return true
		}
		if left == 0 {
			return false
		}
		left--
		return true
	}
	stall := startStallMeter()
	began := time.Now()
	last := began
	gap := func(now time.Time) {
		if d := now.Sub(last); d > res.MaxGap {
			res.MaxGap, res.GapEnd = d, now
		}
		last = now
	}
	errc := make(chan error, o.Workers)
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		goInNetns(l.Client, func(err error) {
			defer wg.Done()
			if err != nil {
				errc <- err
				return
			}
			for ctx.Err() == nil && take() {
				rr := request(ctx, o.Kind, target, o.Timeout)
				who, err := rr.who, rr.err
				mu.Lock()
				if rr.synRetrans > 0 {
					res.SynRetrans++
				}
				if err == nil && rr.retrans > 0 {
					res.Retransmitted++
					if len(res.Retrans) < 100 {
						res.Retrans = append(res.Retrans, RetransSpan{End: time.Now(), Took: rr.took, Segments: rr.retrans})
					}
				}
				if err != nil && ctx.Err() != nil {
					// Cut short by the end of the run, not failed.
					res.Cut++
				} else if err != nil {
					res.Failed++
					if msg := err.Error(); !seen[msg] && len(res.Errors) < 5 {
						seen[msg] = true
						res.Errors = append(res.Errors, msg)
					}
					if f := rr.failure; f != nil {
						if res.Causes == nil {
							res.Causes = map[string]int{}
						}
						res.Causes[f.Cause]++
						if len(res.Failures) < 10 {
							res.Failures = append(res.Failures, *f)
						}
					}
				} else {
					res.OK++
					res.PerBackend[who]++
					gap(time.Now())
				}
				mu.Unlock()
				if o.Done != nil {
					o.Done.Add(1)
				}
				if o.Pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(o.Pause):
					}
				}
			}
		})
	}
	wg.Wait()
	res.Stall, res.StallEnd = stall.Stop()
	res.Elapsed = time.Since(began)
	gap(time.Now())
	select {
	case err := <-errc:
		return res, err
	default:
	}
	return res, nil
}

// outcome is one request's: who answered, or the error and, for TCP, how
// the client's kernel saw the connection then.
type outcome struct {
	who        string
	err        error
	failure    *Failure // TCP requests that failed
	synRetrans int      // TCP: times the SYN was sent again
	retrans    int      // TCP: segments sent again after the handshake
	took       time.Duration
}

// RetransSpan is a request that succeeded with segments sent again.
type RetransSpan struct {
	End      time.Time     `json:"end"`
	Took     time.Duration `json:"took"` // from its start to its end
	Segments int           `json:"segments"`
}

// request makes one request of kind to target and returns who answered.
// The calling thread must be in the client namespace (sockets are made in
// the namespace of the thread that opens them).
func request(ctx context.Context, kind, target string, timeout time.Duration) (o outcome) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var d net.Dialer
	netw := "tcp"
	probe := newConnProbe()
	defer probe.close()
	if kind == UDP {
		netw = "udp"
	} else {
		d.Control = probe.control
	}
	phase := "dial"
	defer func() {
		if o.err != nil && kind != UDP {
			f := probe.failure(phase, o.err, start, deadline)
			o.failure = &f
		}
	}()
	c, err := d.DialContext(ctx, netw, target)
	if kind != UDP {
		o.synRetrans = probe.synRetrans()
	}
	if err != nil {
		o.err = err
		return o
	}
	defer c.Close()
	phase = "exchange"
	_ = c.SetDeadline(deadline)
	o.who, o.err = exchange(c, kind, target)
	if kind != UDP && o.err == nil {
		o.retrans = probe.retransmitted() - max(o.synRetrans, 0)
	}
	o.took = time.Since(start)
	return o
}

// exchange makes the request on c and returns who answered.
func exchange(c net.Conn, kind, target string) (string, error) {
	switch kind {
	case HTTP:
		req, _ := http.NewRequest("GET", "http://"+target+"/", nil)
		req.Close = true
		if err := req.Write(c); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %s", resp.Status)
		}
		return strings.TrimSpace(string(body)), nil
	case TCP:
		r := bufio.NewReader(c)
		who, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if err := echoLine(c, r, "ping"); err != nil {
			return "", err
		}
		return strings.TrimSpace(who), nil
	default:
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", err
		}
		buf := make([]byte, 256)
		k, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(buf[:k])), nil
	}
}

func echoLine(c net.Conn, r *bufio.Reader, msg string) error {
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != msg {
		return fmt.Errorf("echo of %q came back as %q", msg, line)
	}
	return nil
}

// Held is a set of established TCP connections to the echo service, each
// exchanging a line every interval until Stop: what a restart or a
// failover must not break.
type Held struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*heldConn
}

type heldConn struct {
	backend string
	rounds  int
	err     error
	at      time.Time // when it broke
}

// HeldResult sums up held connections at Stop.
type HeldResult struct {
	Conns      int            `json:"conns"`
	Rounds     int            `json:"rounds"` // echo round trips that succeeded
	Broken     int            `json:"broken"`
	PerBackend map[string]int `json:"per_backend"`
	Errors     []string       `json:"errors,omitempty"`
}

func (r HeldResult) String() string {
	s := fmt.Sprintf("%d held connections %v: %d round trips, %d broken", r.Conns, r.PerBackend, r.Rounds, r.Broken)
	if len(r.Errors) > 0 {
		s += "\n  " + strings.Join(r.Errors, "\n  ")
	}
	return s
}

// Hold opens n connections from the client to vip's echo service and keeps
// each busy with a round trip every interval (each with a 2 s deadline).
func (l *Lab) Hold(vip string, n int, interval time.Duration) (*Held, error) {
	if n < 1 || n > 1000 || interval < 10*time.Millisecond {
		return nil, fmt.Errorf("hold: %d connections every %s: want 1-1000, >= 10ms", n, interval)
	}
	h := &Held{stop: make(chan struct{})}
	target := net.JoinHostPort(vip, strconv.Itoa(PortTCP))
	var conns []net.Conn
	var readers []*bufio.Reader
	var names []string
	err := inNetns(l.Client, func() error {
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				return err
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			r := bufio.NewReader(c)
			who, err := r.ReadString('\n')
			if err != nil {
				c.Close()
				return err
			}
			conns, readers, names = append(conns, c), append(readers, r), append(names, strings.TrimSpace(who))
		}
		return nil
	})
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return nil, fmt.Errorf("hold %d connections to %s: %w", n, target, err)
	}
	for i, c := range conns {
		hc := &heldConn{backend: names[i]}
		h.conns = append(h.conns, hc)
		h.wg.Add(1)
		go func(c net.Conn, r *bufio.Reader) {
			defer h.wg.Done()
			defer c.Close()
			t := time.NewTicker(interval)
			defer t.Stop()
			for k := 0; ; k++ {
				select {
				case <-h.stop:
					return
				case <-t.C:
				}
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				err := echoLine(c, r, "round "+strconv.Itoa(k))
				h.mu.Lock()
				if err != nil {
					hc.err, hc.at = err, time.Now()
				} else {
					hc.rounds++
				}
				h.mu.Unlock()
				if err != nil {
					return
				}
			}
		}(c, readers[i])
	}
	return h, nil
}

// Stop ends the round trips, closes the connections and sums up.
func (h *Held) Stop() HeldResult {
	close(h.stop)
	h.wg.Wait()
	r := HeldResult{Conns: len(h.conns), PerBackend: map[string]int{}}
	for _, c := range h.conns {
		r.Rounds += c.rounds
		r.PerBackend[c.backend]++
		if c.err != nil {
			r.Broken++
			if len(r.Errors) < 5 {
				r.Errors = append(r.Errors, fmt.Sprintf("connection to %s broke at %s: %v", c.backend, c.at.Format("15:04:05.000"), c.err))
			}
		}
	}
	return r
}

// Broken returns how many held connections broke so far.
func (h *Held) Broken() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := 0
	for _, c := range h.conns {
		if c.err != nil {
			k++
		}
	}
	return k
}
