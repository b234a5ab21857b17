package lb

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"

	"github.com/aird-net/aird/bpf"
)

// Dataplane is what programs the forwarding of services: a *Programmer
// writing the XDP maps.
type Dataplane interface {
	// Limits returns the data plane's capacities.
	Limits() Limits
	// Adopt records in ids the ids an earlier process left in the data
	// plane, and keeps ids to take new ones from. It is called once,
	// before the first Program.
	Adopt(ids *IDs) (Adopted, error)
	// Program applies a change, all or nothing: on error the data plane
	// is as it was. It returns, per upserted service, how many backends
	// have slots in its table now.
	Program(ch Change) (map[ServiceKey]uint32, error)
}

// Adopted is what Adopt found.
type Adopted struct {
	Services int // service entries with their vip ids
	Tables   int // of them, with a table this process can account for
	Backends int
}

// Change is one step of programming.
type Change struct {
	// Upsert are the services to program (new or changed, or with
	// changed health).
	Upsert []Upsert
	// Remove are the services to take out.
	Remove []ServiceKey
	// Full says Upsert is every service: anything else programmed
	// (adopted from an earlier process) is removed.
	Full bool
	// TableSize caps the size of a Maglev table (Config.MaglevTableSize).
	TableSize uint32
	// SlotsPerBackend is the least number of slots per backend of a
	// Maglev table (Config.MaglevSlotsPerBackend).
	SlotsPerBackend uint32
	// Checked says every Upsert's Service passed Service.validate (the
	// Manager's changes: it checks a service when it comes): the
	// programmer does not check them again (a sort of each service's
	// backends, 0.1 s of CPU at a start of 10,000 services of 100).
	Checked bool
}

// Upsert is one service to program.
type Upsert struct {
	Service *Service
	// Usable says, per backend of Service, whether it may take new
	// flows (healthy, not drained); unusable backends keep their id and
	// entry, so the flows tracked to them go on.
	Usable []bool
	// Pending says some backend has no health answer yet since this
	// process started: a table adopted from the earlier process stays
	// as it is while the service's configuration is unchanged.
	Pending bool
}

// Programmer writes services into the lb stage's maps, the one writer of
// those maps in the daemon. Ids (vip_id, backend id) are what conntrack
// entries refer to, so they are adopted from the pinned maps at start and
// never reused soon after being freed (IDs): an established flow keeps its
// backend across reloads and restarts.
//
// Each service's Maglev table has the size TableSize gives its backend
// count; services whose tables would be identical (same size, backends
// and effective weights) share one. A change touches only the services
// it names: their ids, backends, tables, allow lists and vips entries.
type Programmer struct {
	lb      *bpf.LB
	log     *slog.Logger
	tabDir  string // where tables are pinned; "": handles kept open instead
	ids     *IDs
	svcs    map[ServiceKey]*progService
	byAddr  map[netip.Addr][]ServiceKey // VIP address -> its services
	entries map[ServiceKey]bpf.DatapathVipValue
	beRefs  map[uint32]int    // backend id -> services using it
	shared  map[digest]*table // tables that can be shared: with a handle or a pin, by digest
	allowN  int               // allow entries in the map
	workers int
	// stale is what adoption found and no service claims until the
	// first full Program removes it: tables of vip ids without a
	// service, allow entries of such ids.
	staleTables []uint32
	staleAllow  map[uint32][]netip.Prefix
}

// progService is a programmed service.
type progService struct {
	key      ServiceKey
	vid      uint32
	flags    bpf.DatapathVipFlags
	allow    []netip.Prefix
	backends []uint32 // backend ids; nil: adopted, not programmed by this process yet
	table    *table   // nil: no table installed
	config   digest   // of the installed table's configuration
}

// ProgrammerOptions configure a Programmer.
type ProgrammerOptions struct {
	Logger *slog.Logger // default slog.Default()
	// TableDir, a directory on bpffs, keeps every Maglev table pinned
	// (named by its digest) instead of holding a file descriptor per
	// table: a table is opened again when another service can share it,
	// also after a restart. "" keeps a descriptor per table (tests).
	TableDir string
}

// NewProgrammer returns a programmer for maps (loaded with the id spaces
// of bpf.Config); Adopt reads what an earlier process programmed.
func NewProgrammer(maps bpf.LBMaps, o ProgrammerOptions) *Programmer {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Programmer{lb: bpf.NewLB(maps), log: log, tabDir: o.TableDir, svcs: map[ServiceKey]*progService{},
		byAddr: map[netip.Addr][]ServiceKey{}, entries: map[ServiceKey]bpf.DatapathVipValue{},
		beRefs: map[uint32]int{}, shared: map[digest]*table{}, staleAllow: map[uint32][]netip.Prefix{},
		workers: max(1, runtime.GOMAXPROCS(0))}
}

// Limits implements Dataplane.
func (p *Programmer) Limits() Limits {
	return Limits{MaxVIPs: p.lb.MaxVIPs(), MaxBackends: p.lb.MaxBackends(), VIPEntries: p.lb.VIPEntries(), AllowEntries: p.lb.AllowEntries()}
}

// Program implements Dataplane.
func (p *Programmer) Program(ch Change) (map[ServiceKey]uint32, error) {
	if p.ids == nil {
		return nil, errors.New("lb: program before adopt")
	}
	tx := &txn{}
	pl, err := p.plan(ch, tx)
	if err == nil {
		err = p.apply(pl, tx)
	}
	if err != nil {
		if rerr := tx.rollback(); rerr != nil {
			p.log.Error("lb: rolling back a failed change left the data plane partly changed", "err", rerr)
		}
		return nil, fmt.Errorf("lb: %w", err)
	}
	if err := p.commit(pl); err != nil {
		p.log.Error("lb: removing stale entries failed (they stay until the next change)", "err", err)
	}
	return pl.usable, nil
}

// txn undoes a failed change: every write registers how to revert it.
type txn struct{ undos []func() error }

func (t *txn) onUndo(f func() error) { t.undos = append(t.undos, f) }

func (t *txn) rollback() error {
	var errs []error
	for i := len(t.undos) - 1; i >= 0; i-- {
		if err := t.undos[i](); err != nil {
			errs = append(errs, err)
		}
	}
	t.undos = nil
	return errors.Join(errs...)
}

// VIPCounters returns the traffic counters of vip ids (see bpf.LB).
func (p *Programmer) VIPCounters(ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	return p.lb.VIPCounters(ids)
}

// BackendCounters returns the traffic counters of backend ids.
func (p *Programmer) BackendCounters(ids []uint32) (map[uint32]bpf.DatapathCounter, error) {
	return p.lb.BackendCounters(ids)
}

// Tables returns how many Maglev tables the programmer accounts for and
// how many services use them (tables are shared).
func (p *Programmer) Tables() (tables, services int) {
	seen := map[*table]bool{}
	for _, s := range p.svcs {
		if s.table != nil {
			seen[s.table] = true
			services++
		}
	}
	return len(seen), services
}
