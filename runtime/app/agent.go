package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// StoreNodes backs the agent callback API's node lookups with the store.
type StoreNodes struct{ Store store.Store }

// AgentNode converts a stored node to what the callback API returns (to an
// unauthenticated lookup): secret keys, the node's own secret values
// wherever a run copied them, and URL credentials are masked.
func AgentNode(n *store.Node) agentapi.Node {
	red := secrets.NewRedactor()
	for _, m := range []map[string]any{n.DriverInfo, n.InstanceInfo, n.DriverInternalInfo} {
		red.AddFromMap(m)
	}
	mask := func(m map[string]any) map[string]any {
		out, _ := red.Value(m).(map[string]any)
		return out
	}
	return agentapi.Node{UUID: n.UUID, Name: n.Name, Driver: n.Driver, Properties: mask(n.Properties),
		InstanceInfo: mask(n.InstanceInfo), DriverInternalInfo: mask(n.DriverInternalInfo)}
}

// NodeByUUID implements agentapi.Nodes.
func (s StoreNodes) NodeByUUID(ctx context.Context, uuid string) (agentapi.Node, error) {
	n, err := s.Store.GetNode(ctx, uuid)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return agentapi.Node{}, fmt.Errorf("%w: %v", agentapi.ErrNotFound, err)
		}
		return agentapi.Node{}, err
	}
	return AgentNode(n), nil
}

// NodeByMACs implements agentapi.Nodes: the single node owning one of macs.
func (s StoreNodes) NodeByMACs(ctx context.Context, macs []string) (agentapi.Node, error) {
	nodes, err := s.Store.ListNodes(ctx)
	if err != nil {
		return agentapi.Node{}, err
	}
	want := map[string]bool{}
	for _, m := range macs {
		want[strings.ToLower(m)] = true
	}
	var found *store.Node
	for _, n := range nodes {
		for _, p := range n.Ports {
			if want[strings.ToLower(p.Address)] {
				if found != nil && found.UUID != n.UUID {
					return agentapi.Node{}, fmt.Errorf("%w: the MACs belong to several nodes (%s, %s)", agentapi.ErrNotFound, found.Name, n.Name)
				}
				found = n
			}
		}
	}
	if found == nil {
		return agentapi.Node{}, fmt.Errorf("%w: no node has a port with MAC %s", agentapi.ErrNotFound, strings.Join(macs, ", "))
	}
	return AgentNode(found), nil
}

// lazyAgent is the `agent` module; its callback server starts listening
// when a script first requires it, so commands that never deploy or clean
// open no port.
type lazyAgent struct {
	inner  *agent.Module
	srv    *agentapi.Server
	addr   string
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func (a *App) agentModule() *lazyAgent {
	hb := a.Config.Duration("agent", "heartbeat_timeout", 300*time.Second)
	srv := agentapi.New(StoreNodes{a.Store}, agentapi.Options{HeartbeatTimeout: hb, Logger: a.Log,
		OnHeartbeat: func(ctx context.Context, h agentapi.Heartbeat) {
			_, err := a.Store.UpdateNodeAs(context.WithoutCancel(ctx), store.Internal, h.NodeUUID, func(n *store.Node) error {
				n.DriverInternalInfo["agent_url"] = h.AgentURL
				n.DriverInternalInfo["agent_last_heartbeat"] = h.At.Unix()
				return nil
			})
			if err != nil {
				a.Log.Warn("recording agent heartbeat failed", "node", h.NodeUUID, "err", err)
			}
		}})
	m := &lazyAgent{inner: agent.NewModule(srv), srv: srv, addr: a.Config.String("lightsout", "agent_address")}
	a.OnClose(m.close)
	return m
}

// AgentServer returns the callback server (for `lightsout serve`), started.
func (m *lazyAgent) start() error {
	m.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		if err := m.srv.Listen(ctx, m.addr); err != nil {
			m.err = fmt.Errorf("agent callback API on %s: %w (set [lightsout] agent_address)", m.addr, err)
		}
	})
	return m.err
}

func (m *lazyAgent) close() error {
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	return m.srv.Close()
}

// Name implements module.Module.
func (m *lazyAgent) Name() string { return m.inner.Name() }

// Open implements module.Module: it starts the callback API on first use.
func (m *lazyAgent) Open(L *lua.LState, r module.Run) lua.LValue {
	if err := m.start(); err != nil {
		module.Raise(L, "require agent", err)
	}
	return m.inner.Open(L, r)
}

// AgentServer returns the process's agent callback server, listening.
func (a *App) AgentServer() (*agentapi.Server, error) {
	if a.agent == nil {
		return nil, errors.New("the agent module is not loaded in this process")
	}
	if err := a.agent.start(); err != nil {
		return nil, err
	}
	return a.agent.srv, nil
}
