package maglev

import (
	"encoding/binary"
	"slices"
	"testing"
)

// fuzzBackends decodes backends from data: per backend, a key length
// (0–5), the key, then a weight selector byte — below 32 weight 0, below
// 224 weight 1–8, otherwise a weight from the next four bytes.
func fuzzBackends(data []byte) []Backend {
	var bs []Backend
	for len(data) > 0 && len(bs) < 300 {
		l := min(int(data[0]%6), len(data)-1)
		key := string(data[1 : 1+l])
		data = data[1+l:]
		var w uint32
		if len(data) > 0 {
			c := data[0]
			data = data[1:]
			switch {
			case c < 32:
			case c < 224:
				w = 1 + uint32(c%8)
			case len(data) >= 4:
				w = binary.LittleEndian.Uint32(data)
				data = data[4:]
			default:
				w = uint32(c)
			}
		}
		bs = append(bs, Backend{Key: key, Weight: w})
	}
	return bs
}

// FuzzBuild checks Build's invariants on arbitrary backends:
//   - it fails exactly when a key is empty or repeated;
//   - every slot is -1 or the index of a backend of weight > 0, and -1
//     only when no backend has weight > 0;
//   - every backend's slot count is within one slot of size·w/W (W the
//     total weight), so a backend gets at least one slot whenever
//     size·w ≥ W: all do when size ≥ W/w_min, size ≥ n for equal weights;
//   - the table does not depend on the order of the input, and matches
//     referenceBuild.
func FuzzBuild(f *testing.F) {
	sizes := []uint32{2, 3, 5, 7, 11, 13, 31, 61, 101, 251, 509, 1021, 4093}
	f.Add([]byte("\x01a\x40\x01b\x41\x01c\x42"), uint8(3))
	f.Add([]byte("\x02aa\x00\x02bb\x00"), uint8(0))
	f.Add([]byte("\x01a\xff\xff\xff\xff\xff\x01b\x40"), uint8(5))
	f.Add([]byte("\x01a\x40\x01a\x40"), uint8(4))
	f.Add([]byte("\x00\x40\x01b\x40"), uint8(4))
	f.Add([]byte("\x03abc\x50\x03abd\xe0\x01\x00\x00\x00\x03abe\xe0\x00\x00\x01\x00"), uint8(12))
	f.Fuzz(func(t *testing.T, data []byte, sizeSel uint8) {
		bs := fuzzBackends(data)
		size := sizes[int(sizeSel)%len(sizes)]
		table, err := Build(bs, size)

		seen := map[string]bool{}
		bad := false
		for _, b := range bs {
			bad = bad || b.Key == "" || seen[b.Key]
			seen[b.Key] = true
		}
		if bad != (err != nil) {
			t.Fatalf("bad keys %v, err %v", bad, err)
		}
		if err != nil {
			return
		}

		if len(table) != int(size) {
			t.Fatalf("len %d, want %d", len(table), size)
		}
		var total uint64
		for _, b := range bs {
			total += uint64(b.Weight)
		}
		c := make([]uint64, len(bs))
		for i, v := range table {
			switch {
			case v == -1:
				if total > 0 {
					t.Fatalf("slot %d is -1 with weight present", i)
				}
			case v < 0 || int(v) >= len(bs) || bs[v].Weight == 0:
				t.Fatalf("slot %d = %d", i, v)
			default:
				c[v]++
			}
		}
		for i, b := range bs {
			// |count − size·w/W| < 1, times W; the products stay below 2⁶⁴
			// (size < 2¹³, W < 300·2³²).
			got, ideal := c[i]*total, uint64(size)*uint64(b.Weight)
			if max(got, ideal)-min(got, ideal) >= total && total > 0 {
				t.Fatalf("backend %d weight %d: %d slots of %d, total weight %d", i, b.Weight, c[i], size, total)
			}
			if b.Weight > 0 && uint64(size)*uint64(b.Weight) >= total && c[i] == 0 {
				t.Fatalf("backend %d weight %d got no slot", i, b.Weight)
			}
		}

		rev := slices.Clone(bs)
		slices.Reverse(rev)
		if !slices.Equal(owners(mustBuild(t, rev, size), rev), owners(table, bs)) {
			t.Fatal("reversed input gives a different table")
		}
		if uint64(size)*uint64(len(bs)) <= 1<<16 && !slices.Equal(table, referenceBuild(bs, size)) {
			t.Fatal("Build and referenceBuild disagree")
		}
	})
}
