// Command airdlab builds the rack of integration/lab in network namespaces:
// two ToRs (FRR, BIRD), two aird load-balancer nodes, aird backend nodes
// with container endpoints, and a client. It is the README demo (make
// demo) and a place to look around (make demo KEEP=1).
//
//	airdlab demo [-keep]   up, HTTP/TCP/UDP traffic, what the ToRs and LB nodes show, down
//	airdlab up             up, and leave it running (like demo -keep, without traffic)
//	airdlab down [DIR...]  remove kept labs, and labs whose builder died (all under /run/aird-lab)
//
// Run as root. It removes what it built when it fails or is interrupted.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/aird-net/aird/integration/lab"
)

func main() {
	lab.ServeIfAsked()
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "demo":
		err = demo(os.Args[2:], false)
	case "up":
		err = demo(os.Args[2:], true)
	case "down":
		err = down(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "airdlab:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: airdlab demo [-keep] | up | down [DIR...]")
	os.Exit(2)
}

func binDir() string {
	self, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(self)
}

func demo(args []string, upOnly bool) error {
	fs := flag.NewFlagSet("airdlab", flag.ExitOnError)
	keep := fs.Bool("keep", upOnly, "leave the lab running at the end")
	aird := fs.String("aird", filepath.Join(binDir(), "aird"), "aird binary")
	airctl := fs.String("airctl", filepath.Join(binDir(), "airctl"), "airctl binary")
	requests := fs.Int("requests", 2000, "HTTP requests to each VIP")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		return errors.New("run as root (network namespaces, XDP, BGP daemons)")
	}
	// Leftovers of an interrupted earlier run go first.
	_ = downOrphans()

	o := lab.Options{Aird: *aird, Airctl: *airctl, Keep: *keep, Log: os.Stdout}
	type built struct {
		l   *lab.Lab
		err error
	}
	done := make(chan built, 1)
	ids := make(chan string, 1)
	o.Created = func(dir string) { ids <- dir }
	go func() {
		l, err := lab.Up(o)
		if err == nil {
			err = show(l, *requests, upOnly)
		}
		done <- built{l, err}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var dir string
	for {
		select {
		case dir = <-ids:
			continue
		case s := <-sig:
			fmt.Printf("\n%v: removing the lab\n", s)
			if dir != "" {
				if err := lab.DownDir(dir); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
			}
			os.Exit(130)
		case b := <-done:
			if b.err != nil {
				if b.l != nil {
					_ = b.l.Down()
				}
				return b.err
			}
			if *keep {
				printKeep(b.l)
				return nil
			}
			say("done: removing the lab")
			return b.l.Down()
		}
	}
}

func down(dirs []string) error {
	if len(dirs) == 0 {
		return downAll()
	}
	var errs []error
	for _, d := range dirs {
		errs = append(errs, lab.DownDir(d))
	}
	return errors.Join(errs...)
}

// downAll removes every kept or orphaned lab under the root.
func downAll() error {
	ents, _ := os.ReadDir(lab.DefaultRoot)
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(lab.DefaultRoot, e.Name())
		st, err := lab.LoadState(dir)
		if err != nil {
			continue
		}
		if st.Keep || st.Orphaned() {
			fmt.Printf("removing lab %s\n", st.ID)
			errs = append(errs, lab.DownDir(dir))
		}
	}
	return errors.Join(errs...)
}

// downOrphans removes labs whose builder died without removing them.
func downOrphans() error {
	ents, _ := os.ReadDir(lab.DefaultRoot)
	for _, e := range ents {
		dir := filepath.Join(lab.DefaultRoot, e.Name())
		if st, err := lab.LoadState(dir); err == nil && st.Orphaned() {
			fmt.Printf("removing lab %s left by an interrupted run\n", st.ID)
			_ = lab.DownDir(dir)
		}
	}
	return nil
}

func say(s string) { fmt.Printf("\n\033[1m== %s\033[0m\n", s) }
