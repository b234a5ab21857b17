package version

import (
	"bytes"
	"debug/elf"
)

// BuildID returns the Go build id of the running executable (the
// linker's note, which changes with any input of the build), or "" when
// it has none (a binary linked with -buildid= or not ELF). What aird
// keeps for its next start (a configuration snapshot) is keyed by it, so
// another build never reads it.
func BuildID() string {
	return buildID("/proc/self/exe")
}

// goBuildIDNote is the type of the Go linker's build id note (name "Go").
const goBuildIDNote = 4

func buildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	data, err := s.Data()
	if err != nil || len(data) < 16 {
		return ""
	}
	bo := f.ByteOrder
	namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
	nameEnd := 12 + uint64(namesz)
	descAt := 12 + (uint64(namesz)+3)&^3
	if typ != goBuildIDNote || nameEnd > uint64(len(data)) || descAt+uint64(descsz) > uint64(len(data)) ||
		string(bytes.TrimRight(data[12:nameEnd], "\x00")) != "Go" {
		return ""
	}
	return string(data[descAt : descAt+uint64(descsz)])
}
