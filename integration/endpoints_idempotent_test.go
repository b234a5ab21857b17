package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// TestEndpointAddIdempotent: adding an endpoint again with the same name
// and namespace returns the existing one (same link and addresses); the
// same name with another namespace is refused, HTTP 409 and airctl exit
// status 1, and changes nothing (docs/operator-guide.md, Endpoints).
func TestEndpointAddIdempotent(t *testing.T) {
	n := endpointNode(t)
	n.start()
	ns, first := n.addContainer("web-1")

	out, errs, code := n.airctl("endpoint", "add", "web-1", "--netns", "/run/netns/"+ns, "-o", "json")
	if code != 0 {
		t.Fatalf("adding web-1 again with its namespace: exit %d: %s", code, errs)
	}
	var again api.Endpoint
	if err := json.Unmarshal([]byte(out), &again); err != nil {
		t.Fatalf("endpoint add -o json: %v\n%s", err, out)
	}
	if again.Interface != first.Interface || !slices.Equal(again.Addresses, first.Addresses) {
		t.Fatalf("adding web-1 again returned %+v, want the existing %+v", again, first)
	}

	other := testutil.NewNetns(t, "airde-")
	_, errs, code = n.airctl("endpoint", "add", "web-1", "--netns", "/run/netns/"+other)
	if code != 1 || !strings.Contains(errs, "endpoint exists") {
		t.Fatalf("web-1 with another namespace: exit %d, %q; want 1, endpoint exists", code, errs)
	}
	body, _ := json.Marshal(api.EndpointRequest{Name: "web-1", Netns: "/run/netns/" + other})
	if status, resp := postJSON(t, n.socket, "/v1/endpoints", string(body)); status != http.StatusConflict {
		t.Fatalf("POST /v1/endpoints for web-1 with another namespace: %d %s, want 409", status, resp)
	}

	eps := n.endpoints()
	if len(eps) != 1 || eps[0].Interface != first.Interface || !slices.Equal(eps[0].Addresses, first.Addresses) {
		t.Fatalf("endpoints after the refused adds: %+v, want web-1 as it was", eps)
	}
	if links := testutil.NetnsExec(t, other, "ip", "-o", "link"); strings.Contains(links, "eth0") {
		t.Fatalf("a refused add left eth0 in the other namespace:\n%s", links)
	}
}

// postJSON sends one JSON POST to the API socket and returns the status
// and body.
func postJSON(t *testing.T, sock, path, body string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Post("http://aird"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
