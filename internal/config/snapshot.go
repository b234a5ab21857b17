package config

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
)

// A snapshot is a loaded configuration encoded for the next start of the
// same aird on the same host: a restart with an unchanged file decodes it
// instead of parsing and checking 16 MB of TOML again (about 1.5 s of CPU
// at 10,000 services of 100 backends; decoding takes a few tens of ms).
// It stands for the file only while the file's content, the program (the
// daemon passes its build id) and the host name (a default of
// node.name) are those it was made from: all three are in its key. Only
// a file of SnapshotMinSize or more without included files is kept
// (smaller files parse in milliseconds; included files have the Loader's
// own reuse).
//
// Layout: snapshotMagic, the key (32 bytes), the sha256 of the payload
// (32 bytes), the payload: the Config, field by field in declaration
// order (encodeValue).

// SnapshotMinSize is the least file size worth a snapshot.
const SnapshotMinSize = 1 << 20

// snapshotMagic names the format; a change of the encoding changes it.
const snapshotMagic = "AIRDCS01"

const snapshotHeader = len(snapshotMagic) + 2*sha256.Size

// snapshotKey is what a snapshot stands for: the file's content, the
// program and the host name.
func snapshotKey(program string, content [32]byte) [32]byte {
	host, _ := os.Hostname()
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d:%s\x00%d:%s\x00", snapshotMagic, len(program), program, len(host), host)
	h.Write(content[:])
	return [32]byte(h.Sum(nil))
}

// EncodeSnapshot returns f as a snapshot for program (a build id: a
// snapshot is read back only by the same build), or nil when f is not
// worth one: a snapshot smaller than SnapshotMinSize (a file of a few
// hundred services), with included files, or without a program to key it
// by. f must be as Load returned it, before anything changed it.
func EncodeSnapshot(f *File, program string) ([]byte, error) {
	content, err := hex.DecodeString(f.Digest)
	if program == "" || len(f.Include) > 0 || len(f.Sources) > 0 || err != nil || len(content) != sha256.Size {
		return nil, nil
	}
	// About 1.2 times the file (addresses in binary, names and keys
	// without their TOML): sized so that appending does not copy it.
	e := snapEncoder{buf: make([]byte, snapshotHeader, snapshotHeader+max(int(f.Size)*5/4, 64<<10))}
	if err := e.value(reflect.ValueOf(f.Config).Elem()); err != nil {
		return nil, fmt.Errorf("config snapshot: %w", err)
	}
	if len(e.buf)-snapshotHeader < SnapshotMinSize {
		return nil, nil
	}
	key := snapshotKey(program, [32]byte(content))
	sum := sha256.Sum256(e.buf[snapshotHeader:])
	copy(e.buf, snapshotMagic)
	copy(e.buf[len(snapshotMagic):], key[:])
	copy(e.buf[len(snapshotMagic)+sha256.Size:], sum[:])
	return e.buf, nil
}

// LoadSnapshot loads the file at path as Load does, but when snap (a
// snapshot EncodeSnapshot made; nil: none) stands for the file's current
// content under program, it decodes the configuration from snap instead
// of parsing the file. fromSnap says which happened; a snapshot that does
// not match, or does not decode, is passed over, and the file, read and
// hashed once, is parsed.
func (l *Loader) LoadSnapshot(path string, snap []byte, program string) (f *File, fromSnap bool, err error) {
	if len(snap) < snapshotHeader || program == "" || string(snap[:len(snapshotMagic)]) != snapshotMagic {
		f, err = l.Load(path)
		return f, false, err
	}
	l.mu.Lock()
	data, err := readFile(path)
	if err != nil {
		l.mu.Unlock()
		return nil, false, err
	}
	content := sha256.Sum256(data)
	cfg := decodeSnapshot(snap, snapshotKey(program, content))
	if cfg == nil {
		defer l.mu.Unlock()
		sum := make(chan [32]byte, 1)
		sum <- content
		f, err = l.load(path, data, sum)
		return f, false, err
	}
	// As a load of a file without included files leaves the Loader; its
	// chunks, for the next load, are made by Prepare.
	l.files, l.index, l.chunks, l.pending = nil, nil, nil, nil
	if len(data) >= l.chunkMin() {
		kept := *cfg
		kept.Services = slices.Clone(cfg.Services)
		l.pending = &snapshotted{path: path, data: data, cfg: &kept}
	}
	l.mu.Unlock()
	return &File{Path: path, Digest: hex.EncodeToString(content[:]), Config: cfg, Size: int64(len(data))}, true, nil
}

// decodeSnapshot returns the configuration in snap when its key is key
// and it decodes whole, else nil.
func decodeSnapshot(snap []byte, key [32]byte) (cfg *Config) {
	head := snap[len(snapshotMagic):snapshotHeader]
	payload := snap[snapshotHeader:]
	if !bytes.Equal(head[:sha256.Size], key[:]) {
		return nil
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(head[sha256.Size:], sum[:]) {
		return nil
	}
	defer func() {
		if recover() != nil { // a bug, not the input (checksummed): parse instead
			cfg = nil
		}
	}()
	d := snapDecoder{buf: payload}
	out := new(Config)
	if err := d.value(reflect.ValueOf(out).Elem()); err != nil || len(d.buf) != 0 || len(out.Include) > 0 {
		return nil
	}
	return out
}

var (
	addrType     = reflect.TypeFor[netip.Addr]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	backendsType = reflect.TypeFor[[]Backend]()
	// backendsFast: Backend is an address and a weight, which
	// snapEncoder.backends writes as the generic encoding would; a
	// Backend with more fields takes the generic way.
	backendsFast = reflect.TypeFor[Backend]().NumField() == 2 &&
		reflect.TypeFor[Backend]().Field(0).Type == addrType && reflect.TypeFor[Backend]().Field(1).Type.Kind() == reflect.Int
)

// snapEncoder appends values: booleans as a byte, integers as varints,
// strings and slices by length (a slice's length plus one, 0 for nil: a
// decoded configuration is deeply equal to the parsed one), a pointer as
// 0 (nil) or 1 and its value, structs field by field, addresses and
// prefixes in their binary form. Anything else (maps, interfaces,
// unexported fields) is refused, so a field the encoding cannot carry
// fails the tests rather than going missing.
type snapEncoder struct{ buf []byte }

func (e *snapEncoder) value(v reflect.Value) error {
	switch t := v.Type(); {
	case t == backendsType && backendsFast:
		e.backends(v.Interface().([]Backend))
		return nil
	case t == addrType || t == prefixType:
		b, err := v.Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		e.bytes(b)
		return nil
	}
	switch v.Kind() {
	case reflect.Bool:
		b := byte(0)
		if v.Bool() {
			b = 1
		}
		e.buf = append(e.buf, b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = binary.AppendVarint(e.buf, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		e.buf = binary.AppendUvarint(e.buf, v.Uint())
	case reflect.String:
		e.buf = binary.AppendUvarint(e.buf, uint64(v.Len()))
		e.buf = append(e.buf, v.String()...)
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, 0)
			return nil
		}
		e.buf = binary.AppendUvarint(e.buf, uint64(v.Len())+1)
		for i := range v.Len() {
			if err := e.value(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, 0)
			return nil
		}
		e.buf = append(e.buf, 1)
		return e.value(v.Elem())
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				return fmt.Errorf("%s.%s: unexported field", t, t.Field(i).Name)
			}
			if err := e.value(v.Field(i)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: cannot encode a %s", v.Type(), v.Kind())
	}
	return nil
}

// bytes appends b by length.
func (e *snapEncoder) bytes(b []byte) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// backends is the encoding of []Backend without reflection per backend
// (a million at 10,000 services): as encodeValue would write it.
func (e *snapEncoder) backends(bs []Backend) {
	if bs == nil {
		e.buf = append(e.buf, 0)
		return
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(bs))+1)
	var scratch []byte
	for _, b := range bs {
		scratch, _ = b.Address.AppendBinary(scratch[:0])
		e.bytes(scratch)
		e.buf = binary.AppendVarint(e.buf, int64(b.Weight))
	}
}

// snapDecoder reads what snapEncoder wrote.
type snapDecoder struct{ buf []byte }

var errSnapshotShort = errors.New("config snapshot: truncated")

func (d *snapDecoder) uvarint() (uint64, error) {
	n, k := binary.Uvarint(d.buf)
	if k <= 0 {
		return 0, errSnapshotShort
	}
	d.buf = d.buf[k:]
	return n, nil
}

func (d *snapDecoder) varint() (int64, error) {
	n, k := binary.Varint(d.buf)
	if k <= 0 {
		return 0, errSnapshotShort
	}
	d.buf = d.buf[k:]
	return n, nil
}

// bytes reads a length and that many bytes (aliasing the input).
func (d *snapDecoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil || n > uint64(len(d.buf)) {
		return nil, errSnapshotShort
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b, nil
}

// length reads a slice's length: -1 for nil. Every element takes a byte
// at least, which bounds it.
func (d *snapDecoder) length() (int, error) {
	n, err := d.uvarint()
	if err != nil || n > uint64(len(d.buf))+1 {
		return 0, errSnapshotShort
	}
	return int(n) - 1, nil
}

// maxDecodedRatio bounds what decoding a byte may allocate: an element
// encodes in a byte per field at least, and no field's Go value is larger
// than 24 bytes (a slice header, an address).
const maxDecodedRatio = 32

// fits reports whether n elements of size bytes each may be allocated for
// what is left to decode: a length no encoded slice can have is refused
// before its memory is asked for (the checksum stops damage, not a
// snapshot written to exhaust memory).
func (d *snapDecoder) fits(n int, size uintptr) bool {
	return uint64(n)*uint64(size) <= maxDecodedRatio*uint64(len(d.buf))+4096
}

func (d *snapDecoder) value(v reflect.Value) error {
	switch t := v.Type(); {
	case t == backendsType && backendsFast:
		bs, err := d.backends()
		v.Set(reflect.ValueOf(bs))
		return err
	case t == addrType:
		return d.binary(v, new(netip.Addr))
	case t == prefixType:
		return d.binary(v, new(netip.Prefix))
	}
	switch v.Kind() {
	case reflect.Bool:
		if len(d.buf) == 0 || d.buf[0] > 1 {
			return errSnapshotShort
		}
		v.SetBool(d.buf[0] == 1)
		d.buf = d.buf[1:]
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := d.varint()
		if err != nil || v.OverflowInt(n) {
			return errSnapshotShort
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := d.uvarint()
		if err != nil || v.OverflowUint(n) {
			return errSnapshotShort
		}
		v.SetUint(n)
	case reflect.String:
		b, err := d.bytes()
		if err != nil {
			return err
		}
		v.SetString(string(b))
	case reflect.Slice:
		n, err := d.length()
		if err != nil || n < 0 {
			return err
		}
		if !d.fits(n, v.Type().Elem().Size()) {
			return errSnapshotShort
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			if err := d.value(s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Pointer:
		if len(d.buf) == 0 || d.buf[0] > 1 {
			return errSnapshotShort
		}
		present := d.buf[0] == 1
		d.buf = d.buf[1:]
		if present {
			p := reflect.New(v.Type().Elem())
			if err := d.value(p.Elem()); err != nil {
				return err
			}
			v.Set(p)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if err := d.value(v.Field(i)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: cannot decode a %s", v.Type(), v.Kind())
	}
	return nil
}

// binary reads into v a value in its binary form, through u (a pointer
// to a value of v's type).
func (d *snapDecoder) binary(v reflect.Value, u encoding.BinaryUnmarshaler) error {
	b, err := d.bytes()
	if err != nil {
		return err
	}
	if err := u.UnmarshalBinary(b); err != nil {
		return err
	}
	v.Set(reflect.ValueOf(u).Elem())
	return nil
}

func (d *snapDecoder) backends() ([]Backend, error) {
	n, err := d.length()
	if err != nil || n < 0 {
		return nil, err
	}
	if !d.fits(n, reflect.TypeFor[Backend]().Size()) {
		return nil, errSnapshotShort
	}
	bs := make([]Backend, n)
	for i := range bs {
		b, err := d.bytes()
		if err != nil {
			return nil, err
		}
		if err := bs[i].Address.UnmarshalBinary(b); err != nil {
			return nil, err
		}
		w, err := d.varint()
		if err != nil || int64(int(w)) != w {
			return nil, errSnapshotShort
		}
		bs[i].Weight = int(w)
	}
	return bs, nil
}
