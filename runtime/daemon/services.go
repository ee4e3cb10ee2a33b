package daemon

import (
	"context"

	"github.com/lightsout/lightsout/runtime/app"
)

// AgentAPI is the App's agent callback API as a Service: serve starts it
// up front (ramdisks of runs started by an earlier process can call back at
// once) instead of on the first require("agent"). It is closed with the App.
func AgentAPI(a *app.App) Service { return agentAPI{a} }

type agentAPI struct{ a *app.App }

func (s agentAPI) Name() string { return "agent callback API" }

func (s agentAPI) Start(ctx context.Context) error {
	srv, err := s.a.AgentServer()
	if err != nil {
		return err
	}
	s.a.Log.Info("agent callback API listening", "url", srv.URL())
	return nil
}

func (s agentAPI) Close() error { return nil }

// Publisher is the built-in web store as a Service: serve starts it up front
// so the URLs of media published by earlier runs keep answering. When Swift
// is the configured publisher there is nothing to start.
func Publisher(a *app.App) Service { return publisher{a} }

type publisher struct{ a *app.App }

func (s publisher) Name() string { return "built-in publisher" }

func (s publisher) Start(ctx context.Context) error {
	u, err := s.a.Publisher()
	if err != nil {
		return err
	}
	if u == "" {
		s.a.Log.Info("images are published to Swift; the built-in publisher is not started")
		return nil
	}
	s.a.Log.Info("built-in publisher listening", "url", u)
	return nil
}

func (s publisher) Close() error { return nil }
