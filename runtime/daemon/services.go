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
