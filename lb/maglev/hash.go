package maglev

import "github.com/cespare/xxhash/v2"

// Seeds of the two hashes of a backend's key. They are part of the table
// format: every load balancer behind the same ECMP group must build the
// same table from the same backends, so changing them (or the hash) moves
// nearly every flow during a rolling upgrade. They are the first 64 bits of
// the fractional parts of √2 and √3, chosen only to be arbitrary.
const (
	offsetSeed uint64 = 0x6a09e667f3bcc908
	skipSeed   uint64 = 0xbb67ae8584caa73b
)

// permutation returns where key's preference list over a table of size
// slots starts (offset, in [0, size-1]) and its stride (skip, in
// [1, size-1]). Because size is prime, every skip is coprime with it, so
// offset, offset+skip, offset+2·skip, … (mod size) visits every slot once.
// Both depend only on key and size, never on other backends or on the
// order of the input.
func permutation(key string, size uint32) (offset, skip uint32) {
	var d xxhash.Digest
	d.ResetWithSeed(offsetSeed)
	_, _ = d.WriteString(key)
	offset = uint32(d.Sum64() % uint64(size))
	d.ResetWithSeed(skipSeed)
	_, _ = d.WriteString(key)
	skip = uint32(d.Sum64()%uint64(size-1)) + 1
	return offset, skip
}
