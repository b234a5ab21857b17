package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a daemon the lab started: detached (its own session, so a ^C in
// the terminal reaches only the lab, which then tears everything down) and
// recorded in the lab's state with its start time, so that a later
// `airdlab down` signals exactly it and never a process that reused its
// PID.
type Proc struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // field 22 of /proc/PID/stat
	Log   string `json:"log"`

	done chan struct{} // closed when this process reaped it; nil otherwise
	err  error
}

// spawn starts argv with stdout and stderr appended to logPath.
func spawn(name, logPath string, env []string, argv ...string) (*Proc, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p := &Proc{Name: name, PID: cmd.Process.Pid, Log: logPath, done: make(chan struct{})}
	p.Start, _ = startTime(p.PID)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// startTime reads the start time of pid (clock ticks after boot).
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Alive reports whether the recorded process still runs (and is the one
// recorded).
func (p *Proc) Alive() bool {
	if p == nil || p.PID == 0 {
		return false
	}
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
		}
	}
	st, err := startTime(p.PID)
	if err != nil || st != p.Start {
		return false
	}
	// A zombie of another parent is not running either.
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 && s[i+2] == 'Z' {
		return false
	}
	return true
}

// Signal sends sig if the process is still the one recorded.
func (p *Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return fmt.Errorf("%s (pid %d) is not running", p.Name, p.PID)
	}
	return syscall.Kill(p.PID, sig)
}

// Wait waits up to timeout for the process to end and returns how it
// ended when this process started it (nil otherwise).
func (p *Proc) Wait(timeout time.Duration) (exited bool, err error) {
	deadline := time.Now().Add(timeout)
	if p.done != nil {
		select {
		case <-p.done:
			return true, p.err
		case <-time.After(timeout):
			return false, nil
		}
	}
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return true, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !p.Alive(), nil
}

// Kill sends SIGKILL (if still running) and waits for the end.
func (p *Proc) Kill() {
	if p.Signal(syscall.SIGKILL) == nil {
		_, _ = p.Wait(10 * time.Second)
	}
}

// run runs a command to completion and returns its combined output; the
// error quotes the command and its output.
func run(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

// runAll runs each command in turn and stops at the first error.
func runAll(cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := run(c...); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
