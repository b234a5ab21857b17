package config

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Loader loads a configuration again and again (the daemon's start and
// its reloads), keeping the parsed and validated services of each included
// file: a file whose content is unchanged, under a main file whose content
// is unchanged, is neither parsed nor validated again, so a reload costs
// in proportion to the files that changed, plus checks across files in
// proportion to the services. A Loader is safe for use by one goroutine at
// a time; a load that fails leaves what it kept unchanged.
type Loader struct {
	mu    sync.Mutex
	files map[string]*included // by path, as the patterns expand
	// index is what the checks across files found in the last load,
	// under a main file of content indexMain (nil: none to go by).
	index     *crossIndex
	indexMain [32]byte
	// chunks is what was kept of a large main file without included
	// files (chunks.go); pending, a file loaded from a snapshot, whose
	// chunks Prepare is to make.
	chunks  *chunked
	pending *snapshotted
	// spare is the buffer of a file the Loader no longer keeps, for the
	// next read (nil: none).
	spare []byte
	// trustAge replaces statTrustAge when set (tests).
	trustAge time.Duration
	// chunkSize and chunkEvery replace chunkMinSize and chunkSpread
	// when set (tests).
	chunkSize, chunkEvery int
}

// chunkMinSize is the smallest main file the Loader keeps in chunks: a
// smaller one is loaded whole in less time than a reload is expected to
// take.
const chunkMinSize = splitMinSize

func (l *Loader) chunkMin() int { return cmp.Or(l.chunkSize, chunkMinSize) }

// included is what a Loader keeps of one included file.
type included struct {
	stat    fileStat
	trusted bool     // stat is older than the read: an equal stat means equal content
	digest  [32]byte // sha256 of the content
	context [32]byte // sha256 of the main file it was validated against
	unit    *unit
	parsed  int64 // bytes parsed by the load that made it (0: kept)
}

// fileStat identifies a version of a file without reading it.
type fileStat struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

// statTrustAge is how old a file's last change must be, when it is read,
// for its stat to stand for its content at the next load: a write within
// the timestamps' granularity of the read could leave the stat unchanged.
const statTrustAge = 2 * time.Second

// Source is one included file of a loaded configuration.
type Source struct {
	Path   string `json:"path"`
	Digest string `json:"digest"` // sha256 of the file's bytes, hex
}

// Load reads, decodes and validates the file at path and the files its
// include key names, reusing what the Loader kept of unchanged included
// files. Errors are as Load's.
func (l *Loader) Load(path string) (*File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := readFileInto(path, l.spare)
	l.spare = nil // data's now, which a failed load drops
	if err != nil {
		return nil, err
	}
	sum := make(chan [32]byte, 1)
	go func() { sum <- sha256.Sum256(data) }()
	return l.load(path, data, sum)
}

// load is Load of data, the content of the file at path, with l.mu held;
// sum delivers data's sha256 once (hashed beside the parse, or known).
func (l *Loader) load(path string, data []byte, sum chan [32]byte) (*File, error) {
	mainSum := func() [32]byte {
		s := <-sum
		sum <- s
		return s
	}
	digest := func() string {
		s := mainSum()
		return hex.EncodeToString(s[:])
	}
	if len(data) >= l.chunkMin() {
		l.prepare()
		old := l.chunks.text()
		if f := l.chunks.reload(path, data, digest); f != nil {
			l.files, l.index, l.spare = nil, nil, old
			return f, nil
		}
	}
	cfg, sh, err := parseFile(path, data)
	if err != nil {
		return nil, err
	}
	f := &File{Path: path, Digest: digest(), Config: cfg, Size: int64(len(data)), Parsed: int64(len(data))}
	l.pending, l.spare = nil, l.chunks.text()
	if len(cfg.Include) == 0 {
		l.files, l.index, l.chunks = nil, nil, nil
		if len(data) >= l.chunkMin() {
			l.chunks, f.spans = newChunked(path, sh, cfg, cmp.Or(l.chunkEvery, chunkSpread))
		}
		return f, nil
	}
	l.chunks = nil
	paths, err := includedFiles(path, cfg.Include)
	if err != nil {
		return nil, locate(path, err)
	}
	files, err := l.loadIncluded(paths, cfg, mainSum())
	if err != nil {
		return nil, err
	}
	units := make([]*unit, 0, len(files)+1)
	units = append(units, newUnit(path, cfg.Services))
	for _, inc := range files {
		units = append(units, inc.unit)
		f.Parsed += inc.parsed
	}
	if err := l.crossCheck(cfg, mainSum(), units); err != nil {
		return nil, err
	}
	f.merge(units, files)
	l.files = make(map[string]*included, len(paths))
	for i, p := range paths {
		l.files[p] = files[i]
	}
	return f, nil
}

// crossCheck checks the files' services against each other: against the
// index of the last load when the main file is unchanged (only the changed
// files' services are looked at), else, or when the changed files hold
// anything another file holds, by crossCheck over all files, which decides
// and words the errors. A load that fails leaves no index.
func (l *Loader) crossCheck(cfg *Config, mainSum [32]byte, units []*unit) error {
	if l.index != nil && l.indexMain == mainSum && l.index.update(cfg, units) {
		return nil
	}
	l.index = nil
	if errs := crossCheck(cfg, units); errs != nil {
		return locateAll(errs)
	}
	l.index, l.indexMain = newCrossIndex(cfg, units), mainSum
	return nil
}

// merge puts every file's services into f, the main file's first, and sets
// the digest to one over all files.
func (f *File) merge(units []*unit, files []*included) {
	n := 0
	for _, u := range units {
		n += len(u.services)
	}
	svcs := make([]Service, 0, n)
	h := sha256.New()
	mainSum, _ := hex.DecodeString(f.Digest)
	h.Write(mainSum)
	f.spans = make([]span, 0, len(units))
	for i, u := range units {
		f.spans = append(f.spans, span{file: u.file, svcs: u.services, at: len(svcs)})
		svcs = append(svcs, u.services...)
		if i > 0 {
			inc := files[i-1]
			f.Sources = append(f.Sources, Source{Path: u.file, Digest: hex.EncodeToString(inc.digest[:])})
			fmt.Fprintf(h, "%s\x00", u.file)
			h.Write(inc.digest[:])
		}
	}
	cfg := *f.Config
	cfg.Services = svcs
	f.Config = &cfg
	f.Digest = hex.EncodeToString(h.Sum(nil))
}

// loadIncluded returns each included file's services: kept ones where the
// file is unchanged, the others read and checked, several at once. The
// errors of every file that fails are returned together, in file order.
func (l *Loader) loadIncluded(paths []string, main *Config, mainSum [32]byte) ([]*included, error) {
	out := make([]*included, len(paths))
	errs := make([]error, len(paths))
	stats := make([]fileStat, len(paths))
	var todo []int
	var total int64
	for i, p := range paths {
		st, err := statFile(p)
		if err != nil {
			errs[i] = err
			continue
		}
		stats[i] = st
		if total += st.size; total > MaxIncludeBytes {
			return nil, Errors{{File: p, Msg: fmt.Sprintf("the included files up to this one hold %d bytes; together they may hold at most %d (256 MiB)", total, MaxIncludeBytes)}}
		}
		if old := l.files[p]; old != nil && old.trusted && old.stat == st && old.context == mainSum {
			kept := *old
			kept.parsed = 0
			out[i] = &kept
			continue
		}
		todo = append(todo, i)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = l.readIncluded(paths[i], l.files[paths[i]], main, mainSum)
			}
		}()
	}
	for _, i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	var all Errors
	for i, err := range errs {
		if err == nil {
			continue
		}
		var es Errors
		if !asErrors(err, &es) {
			return nil, fmt.Errorf("included file %s: %w", paths[i], err)
		}
		all = append(all, es...)
	}
	if all != nil {
		return nil, all
	}
	return out, nil
}

// readIncluded reads one included file; when its content is that of old
// (validated against the same main file), old's services are kept.
func (l *Loader) readIncluded(path string, old *included, main *Config, mainSum [32]byte) (*included, error) {
	readAt := time.Now()
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	st, err := statFile(path)
	if err != nil {
		return nil, err
	}
	inc := &included{stat: st, digest: sha256.Sum256(data), context: mainSum,
		trusted: readAt.Sub(time.Unix(0, max(st.mtime, st.ctime))) > cmp.Or(l.trustAge, statTrustAge)}
	if old != nil && old.digest == inc.digest && old.context == mainSum {
		inc.unit = old.unit
		return inc, nil
	}
	u, err := parseIncluded(path, data, main)
	if err != nil {
		return nil, err
	}
	inc.unit, inc.parsed = u, int64(len(data))
	return inc, nil
}

// Prepare readies what the Loader keeps of the last load for the next
// one, if the last load left that to it (a large file without included
// files: the chunks' distinct backends and the index across them), and
// makes the buffer the next load of such a file reads it into resident
// (sparePages). The daemon calls it once it is ready, so that a start
// does not wait for it; a load prepares what is not prepared yet itself.
func (l *Loader) Prepare() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prepare()
	if l.spare == nil && l.chunks != nil {
		l.spare = residentBuffer(len(l.chunks.shape.data) + len(l.chunks.shape.data)/32 + bytes.MinRead)
	}
}

// residentBuffer returns an empty buffer of capacity n with every page
// written once. The first reload of a large file needs a second buffer
// besides the kept text; allocated then, its pages are faulted in by the
// read, after the daemon handed the start's memory back to the kernel
// (3,800 page faults for the 16 MB file, 70-100 ms of CPU on the test
// VM, where a fault costs 20-30 µs). The room above the kept text's size
// lets the file grow by 3 % and still be read into it.
func residentBuffer(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += os.Getpagesize() {
		b[i] = 0
	}
	return b[:0]
}

// snapshotted is a large file without included files loaded from a
// snapshot (LoadSnapshot): its text, and its configuration with a copy of
// its services made before the daemon filled in any VIP.
type snapshotted struct {
	path string
	data []byte
	cfg  *Config
}

// prepare is Prepare with l.mu held.
func (l *Loader) prepare() {
	if p := l.pending; p != nil {
		l.pending = nil
		if sh, err := shapeFile(p.path, p.data); err == nil && sh.headers != nil {
			l.chunks, _ = newChunked(p.path, sh, p.cfg, cmp.Or(l.chunkEvery, chunkSpread))
		}
	}
	l.chunks.prepare()
}

// statFile returns what identifies the version of a file.
func statFile(path string) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileStat{}, fmt.Errorf("read config: %w", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	return fileStat{dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, nil
}

// locate gives errors about the main file's keys their line and column.
func locate(path string, err error) error {
	var es Errors
	if !asErrors(err, &es) {
		return err
	}
	return locateAll(es)
}

// locateAll fills in the line and column of errors that carry only a key
// path (the checks across files run without the files' position index),
// scanning each file they name once, and orders them by file and line.
func locateAll(es Errors) Errors {
	pos := map[string]*positions{}
	for _, e := range es {
		if e.Line > 0 || e.Key == "" {
			continue
		}
		p, ok := pos[e.File]
		if !ok {
			if data, err := readFile(e.File); err == nil {
				sp := scanPositions(stripBOM(data))
				p = &sp
			}
			pos[e.File] = p
		}
		if p != nil {
			at := p.lookup(e.Key)
			e.Line, e.Col = at.Line, at.Col
		}
	}
	order := map[string]int{}
	for _, e := range es {
		if _, ok := order[e.File]; !ok {
			order[e.File] = len(order)
		}
	}
	sort.SliceStable(es, func(i, j int) bool {
		if a, b := order[es[i].File], order[es[j].File]; a != b {
			return a < b
		}
		return before(es[i], es[j])
	})
	return es
}
