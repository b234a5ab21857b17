package doccheck

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/api"
)

// jsonOutputs are the types `airctl … -o json` prints, by command.
var jsonOutputs = map[string]func() any{
	"airctl lb stats": func() any { return &api.LBStats{} },
}

// TestDocsJSONOutputs: every `$ airctl … -o json` example of the documents
// shows JSON that decodes, every field known, into what the command
// prints.
func TestDocsJSONOutputs(t *testing.T) {
	n := 0
	eachDocument(t, func(f, text string) {
		lines := strings.Split(text, "\n")
		for i, line := range lines {
			if !strings.HasPrefix(line, "$ airctl ") || !strings.Contains(line, "-o json") {
				continue
			}
			n++
			var out []string
			for _, l := range lines[i+1:] {
				if strings.HasPrefix(l, "$ ") || strings.HasPrefix(l, "```") {
					break
				}
				out = append(out, l)
			}
			var newValue func() any
			for cmd, nv := range jsonOutputs {
				if strings.HasPrefix(strings.TrimPrefix(line, "$ "), cmd+" ") {
					newValue = nv
				}
			}
			if newValue == nil {
				t.Errorf("%s:%d: `%s`: no output type for this command in jsonOutputs", f, i+1, line)
				continue
			}
			dec := json.NewDecoder(bytes.NewReader([]byte(strings.Join(out, "\n"))))
			dec.DisallowUnknownFields()
			if err := dec.Decode(newValue()); err != nil {
				t.Errorf("%s:%d: `%s`: the JSON shown does not decode into the command's output: %v", f, i+1, line, err)
			}
		}
	})
	if n < 1 {
		t.Error("no `$ airctl … -o json` example found: is the scanner broken?")
	}
}
