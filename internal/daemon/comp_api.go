package daemon

import (
	"os"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

// apiComponent follows [api]. A moved socket is opened before the old one
// is closed; closing a listener lets requests in flight on it (such as the
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
	switch {
	case n.Socket != prev.Socket:
		if err := c.srv.ListenUnix(unixOptions(n)); err != nil {
			return err
		}
		if old != nil {
			c.srv.CloseListener("unix:" + prev.Socket)
		}
	case n.SocketMode != prev.SocketMode || n.SocketGroup != prev.SocketGroup:
		return c.srv.SetSocketAccess(unixOptions(n))
	}
	return nil
}

func (c *apiComponent) close(stopIntent) error { return nil } // the daemon shuts the server down last
