package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store is one bbolt file. Every change is one transaction, synced to
// disk before the call returns: an allocation the caller saw is on disk.
var (
	bucketAllocs  = []byte("allocations") // owner NUL family -> record (JSON)
	bucketCursors = []byte("cursors")     // pool NUL family -> next address to try
	bucketMeta    = []byte("meta")
	keySchema     = []byte("schema")
)

const schemaVersion = "1"

type store struct {
	db *bolt.DB
}

// record is an allocation as stored; owner and family are its key.
type record struct {
	Addr     netip.Addr `json:"address"`
	Pool     string     `json:"pool"`
	Kind     Kind       `json:"kind"`
	Created  time.Time  `json:"created"`
	Reserved bool       `json:"reserved,omitempty"`
}

func allocKey(owner string, f Family) []byte { return []byte(owner + "\x00" + string(f)) }

func openStore(path string, lockTimeout time.Duration) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process (is another aird using this state directory?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAllocs, bucketCursors, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("store schema %q, this aird reads %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &store{db: db}, nil
}

// load reads every allocation and cursor.
func (s *store) load() ([]Allocation, map[string]netip.Addr, error) {
	var out []Allocation
	cursors := map[string]netip.Addr{}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketAllocs).ForEach(func(k, v []byte) error {
			owner, fam, ok := cutKey(k)
			var r record
			if !ok || json.Unmarshal(v, &r) != nil || !r.Addr.IsValid() || FamilyOf(r.Addr) != Family(fam) {
				return fmt.Errorf("corrupt allocation record %q", k)
			}
			out = append(out, Allocation{Owner: owner, Family: Family(fam), Addr: r.Addr, Pool: r.Pool, Kind: r.Kind,
				Created: r.Created, Reserved: r.Reserved})
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
			var a netip.Addr
			if a.UnmarshalText(v) == nil && a.IsValid() {
				cursors[string(k)] = a
			}
			return nil // a bad cursor only costs a rescan from the start
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", s.db.Path(), err)
	}
	return out, cursors, nil
}

func cutKey(k []byte) (string, string, bool) {
	for i, c := range k {
		if c == 0 {
			return string(k[:i]), string(k[i+1:]), i > 0
		}
	}
	return "", "", false
}

func cursorKey(pool string, f Family) string { return pool + "\x00" + string(f) }

// commit deletes dels, writes puts and the cursors in one transaction.
func (s *store) commit(puts, dels []Allocation, cursors map[string]netip.Addr) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAllocs)
		for _, a := range dels {
			if err := b.Delete(allocKey(a.Owner, a.Family)); err != nil {
				return err
			}
		}
		for _, a := range puts {
			v, err := json.Marshal(record{Addr: a.Addr, Pool: a.Pool, Kind: a.Kind, Created: a.Created, Reserved: a.Reserved})
			if err != nil {
				return err
			}
			if err := b.Put(allocKey(a.Owner, a.Family), v); err != nil {
				return err
			}
		}
		for k, c := range cursors {
			v, _ := c.MarshalText()
			if err := tx.Bucket(bucketCursors).Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) close() error { return s.db.Close() }
