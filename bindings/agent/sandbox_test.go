package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

const otherUUID = "9a8b7c6d-5e4f-4321-8765-fedcba987654"

// twoNodes knows the run's node and another one.
type twoNodes struct{}

func (twoNodes) NodeByUUID(_ context.Context, u string) (agentapi.Node, error) {
	if u == nodeUUID || u == otherUUID {
		return agentapi.Node{UUID: u}, nil
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

func (twoNodes) NodeByMACs(context.Context, []string) (agentapi.Node, error) {
	return agentapi.Node{}, agentapi.ErrNotFound
}

// heartbeat posts a heartbeat for node with token and returns the status.
func heartbeat(t *testing.T, api *agentapi.Server, node, token string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"callback_url": "http://127.0.0.1:9999", "agent_token": token})
	resp, err := http.Post(api.URL()+"/v1/heartbeat/"+node, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOtherNodeRefused: a run on one node can neither rotate, revoke nor
// read another node's agent token, nor command its agent; the other
// node's token keeps working at the agent API. A node-less run may act on
// no node.
func TestOtherNodeRefused(t *testing.T) {
	api := agentapi.New(twoNodes{}, agentapi.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); api.Close() })
	if err := api.Listen(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	tokB, err := api.NewToken(otherUUID) // what the other node's deploy holds
	if err != nil {
		t.Fatal(err)
	}
	mod := agent.NewModule(api)
	runA := moduletest.NewRun(context.Background(), &moduletest.Node{ID: nodeUUID, NodeName: "gen10-0"})
	nodeless := moduletest.NewRun(context.Background(), nil)

	calls := []string{
		`agent.token(B)`, `agent.forget(B)`, `agent.info(B)`, `agent.wait_heartbeat(B, { timeout = 1 })`,
		`agent.command(B, "clean.get_clean_steps")`, `agent.commands(B)`, `agent.wait_command(B, "deploy.prepare_image", { timeout = 1 })`,
	}
	refs := map[string]lua.LValue{"uuid": lua.LString(otherUUID), "upper-case uuid": lua.LString(strings.ToUpper(otherUUID)),
		"name": lua.LString("gen10-1")}
	for _, run := range []struct {
		name string
		r    *moduletest.Run
	}{{"node run", runA}, {"node-less run", nodeless}} {
		L := moduletest.Open(run.r, mod)
		defer L.Close()
		for refName, ref := range refs {
			for _, call := range calls {
				t.Run(run.name+"/"+refName+"/"+call, func(t *testing.T) {
					L.SetGlobal("B", ref)
					if err := L.DoString(`
						local agent = require("agent")
						local ok, err = pcall(function() ` + call + ` end)
						assert(not ok, "accepted")
						assert(err.code == "forbidden", tostring(err))
						assert(err.message:find("only on its run's node", 1, true), err.message)
					`); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
		// a node table of another node is refused too
		nt := L.NewTable()
		nt.RawSetString("uuid", lua.LString(otherUUID))
		nt.RawSetString("name", lua.LString("gen10-1"))
		L.SetGlobal("B", nt)
		if err := L.DoString(`local ok, err = pcall(require("agent").token, B); assert(not ok and err.code == "forbidden", tostring(err))`); err != nil {
			t.Fatalf("%s: node table: %v", run.name, err)
		}
	}
	// A node-less run has no node of its own either.
	L := moduletest.Open(nodeless, mod)
	defer L.Close()
	if err := L.DoString(`local ok, err = pcall(require("agent").token); assert(not ok and err.code == "forbidden", tostring(err))`); err != nil {
		t.Fatal(err)
	}

	if got, ok := api.Token(otherUUID); !ok || got != tokB {
		t.Fatal("the other node's token was rotated or revoked")
	}
	if code := heartbeat(t, api, otherUUID, tokB); code != http.StatusAccepted {
		t.Fatalf("the other node's token no longer validates: heartbeat %d", code)
	}
	// the run's own node still works
	La := moduletest.Open(runA, mod)
	defer La.Close()
	if err := La.DoString(`assert(#require("agent").token() > 0)`); err != nil {
		t.Fatal(err)
	}
}
