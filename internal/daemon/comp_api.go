package daemon

import (
	"fmt"
	"os"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

// apiComponent follows [api]. New listeners are opened before old ones are
// closed; closing a listener lets requests in flight on it (such as the
// reload that moved it) finish.
type apiComponent struct {
	srv *api.Server
}

func (c *apiComponent) name() string       { return "api" }
func (c *apiComponent) sections() []string { return []string{config.SectionAPI} }

func unixOptions(a config.API) api.UnixOptions {
	return api.UnixOptions{Path: a.Socket, Mode: os.FileMode(a.SocketMode), Group: a.SocketGroup}
}

func (c *apiComponent) apply(old, new *config.Config) error {
	var prev config.API
	if old != nil {
		prev = old.API
	}
	n := new.API
	opened := []string{}
	undo := func() {
		for _, k := range opened {
			c.srv.CloseListener(k)
		}
	}
	if n.Socket != prev.Socket {
		if err := c.srv.ListenUnix(unixOptions(n)); err != nil {
			return err
		}
		opened = append(opened, "unix:"+n.Socket)
	} else if n.SocketMode != prev.SocketMode || n.SocketGroup != prev.SocketGroup {
		if err := api.SetSocketAccess(unixOptions(n)); err != nil {
			return err
		}
	}
	if n.Listen != prev.Listen && n.Listen != "" {
		if err := c.srv.ListenTCP(n.Listen); err != nil {
			undo()
			if n.Socket == prev.Socket && (n.SocketMode != prev.SocketMode || n.SocketGroup != prev.SocketGroup) {
				_ = api.SetSocketAccess(unixOptions(prev))
			}
			return fmt.Errorf("api: %w", err)
		}
	}
	if old != nil && prev.Socket != n.Socket {
		c.srv.CloseListener("unix:" + prev.Socket)
	}
	if old != nil && prev.Listen != n.Listen && prev.Listen != "" {
		c.srv.CloseListener("tcp:" + prev.Listen)
	}
	return nil
}

func (c *apiComponent) close(stopIntent) error { return nil } // the daemon shuts the server down last
