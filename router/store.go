package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store is one bbolt file: endpoint name -> record (JSON). Every change
// is one transaction synced to disk before the call returns.
var bucketEndpoints = []byte("endpoints")

type store struct {
	db *bolt.DB
}

func openStore(path string) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process (is another aird using this state directory?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketEndpoints)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) put(ep *Endpoint) error {
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEndpoints).Put([]byte(ep.Name), b)
	}); err != nil {
		return fmt.Errorf("store endpoint %s: %w", ep.Name, err)
	}
	return nil
}

func (s *store) delete(name string) error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEndpoints).Delete([]byte(name))
	}); err != nil {
		return fmt.Errorf("forget endpoint %s: %w", name, err)
	}
	return nil
}

func (s *store) all() ([]*Endpoint, error) {
	var out []*Endpoint
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEndpoints).ForEach(func(k, v []byte) error {
			var ep Endpoint
			if err := json.Unmarshal(v, &ep); err != nil {
				return fmt.Errorf("endpoint %q: %w", k, err)
			}
			out = append(out, &ep)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	return out, nil
}

func (s *store) close() error { return s.db.Close() }
