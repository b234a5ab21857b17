package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// editService rewrites the [[services]] table called name in cfg with
// edit (which gets the table's text).
func editService(t *testing.T, cfg, name string, edit func(string) string) string {
	t.Helper()
	start := strings.Index(cfg, "[[services]]\nname = \""+name+"\"\n")
	if start < 0 {
		t.Fatalf("no service %s in the configuration", name)
	}
	end := strings.Index(cfg[start+1:], "[[services]]")
	if end < 0 {
		end = len(cfg)
	} else {
		end += start + 1
	}
	return cfg[:start] + edit(cfg[start:end]) + cfg[end:]
}

// reloadAll writes cfgs (node -> file) and reloads every LB node; it
// returns airctl's errors.
func reloadLBs(l *Lab, cfg func(n *Node) (string, error)) []error {
	var errs []error
	for _, n := range l.LBs {
		body, err := cfg(n)
		if err == nil {
			err = n.WriteConfigText(body)
		}
		if err == nil {
			_, err = n.Airctl("reload")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	return errs
}

// TestRackReloads, under continuous traffic on both LB nodes:
//
//   - a bad file (an unknown key) is refused by both; their running
//     configurations stay as they were and nothing is disturbed;
//   - a good file that drains one endpoint from service web only: new HTTP
//     requests avoid it, while the echo service - not named by the change -
//     keeps sending new flows to it, and no established connection of echo
//     breaks, not even those to the drained endpoint.
func TestRackReloads(t *testing.T) {
	l := upLab(t)
	drained := l.Servers[len(l.Servers)-1]

	t.Run("bad file", func(t *testing.T) {
		before := map[string]string{}
		for _, n := range l.LBs {
			before[n.Name], _ = n.Airctl("config", "show", "-o", "json")
		}
		underLoad(t, l, 5000, func(t *testing.T) {
			errs := reloadLBs(l, func(n *Node) (string, error) {
				cfg, err := n.ConfigText()
				return strings.Replace(cfg, "[lb]\n", "[lb]\nmaglev-table = 7\n", 1), err
			})
			if len(errs) != len(l.LBs) {
				t.Fatalf("a reload with an unknown key was accepted: %v", errs)
			}
			for _, err := range errs {
				if !strings.Contains(err.Error(), "lb.maglev-table") {
					t.Errorf("the refusal does not name the key: %v", err)
				}
			}
		})
		for _, n := range l.LBs {
			after, _ := n.Airctl("config", "show", "-o", "json")
			if after != before[n.Name] {
				t.Errorf("%s's running configuration changed after a refused reload", n.Name)
			}
			if err := n.WriteConfig(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("good file changes only what it names", func(t *testing.T) {
		held, err := l.Hold(VIP6, 64, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		errs := reloadLBs(l, func(n *Node) (string, error) {
			cfg, err := n.ConfigText()
			return editService(t, cfg, "web", func(s string) string {
				return strings.Replace(s, fmt.Sprintf("{ address = %q }", drained.Addr6.String()),
					fmt.Sprintf("{ address = %q, weight = 0 }", drained.Addr6.String()), 1)
			}), err
		})
		for _, err := range errs {
			t.Fatal(err)
		}
		ctx := context.Background()
		web, err := l.Traffic(ctx, Load{Kind: HTTP, VIP: VIP6, Requests: 400})
		if err != nil {
			t.Fatal(err)
		}
		echo, err := l.Traffic(ctx, Load{Kind: TCP, VIP: VIP6, Requests: 400})
		if err != nil {
			t.Fatal(err)
		}
		hr := held.Stop()
		t.Logf("%v\n%v\n%v", web, echo, hr)
		if web.Failed != 0 || web.PerBackend[drained.Name] != 0 {
			t.Errorf("web after draining %s: %v", drained.Name, web)
		}
		if echo.Failed != 0 || echo.PerBackend[drained.Name] == 0 {
			t.Errorf("echo, which the reload did not name, changed: %v", echo)
		}
		if hr.Broken != 0 || hr.PerBackend[drained.Name] == 0 {
			t.Errorf("echo's established connections: %v", hr)
		}
	})
}
