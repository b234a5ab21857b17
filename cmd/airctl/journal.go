package main

import (
	"bytes"
	"io"
	"os"

	"github.com/coreos/go-systemd/v22/journal"
)

// stderrFor returns airctl's error stream: stderr, with each line marked
// "<3>" (priority err) when stderr is journald's stream, as it is for
// systemctl reload aird (ExecReload=airctl reload), so a rejected reload
// shows in journalctl -p err.
func stderrFor(f *os.File) io.Writer {
	if ok, err := journal.StderrIsJournalStream(); err != nil || !ok || f != os.Stderr {
		return f
	}
	return &linePrefixer{w: f, prefix: []byte("<3>"), start: true}
}

// linePrefixer writes prefix at the start of every line.
type linePrefixer struct {
	w      io.Writer
	prefix []byte
	start  bool
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		if p.start {
			out.Write(p.prefix)
		}
		out.WriteByte(c)
		p.start = c == '\n'
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
