package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/deployagent"
)

func TestIsRamdiskInit(t *testing.T) {
	for _, tc := range []struct {
		pid  int
		argv []string
		want bool
	}{
		{1, []string{"/init"}, true},
		{1, []string{"/sbin/init", "quiet"}, true},
		{1, []string{"lightsout", "serve"}, false}, // a container's entry point
		{1, []string{"/usr/bin/lightsout", "agent"}, false},
		{42, []string{"/init"}, false},
		{1, nil, false},
	} {
		if got := isRamdiskInit(tc.pid, tc.argv); got != tc.want {
			t.Errorf("isRamdiskInit(%d, %q) = %v, want %v", tc.pid, tc.argv, got, tc.want)
		}
	}
}

// `lightsout agent` (the real binary) reads its parameters from a root
// tree, looks itself up at the callback API by the NIC's MAC, heartbeats
// with the token and prints the console markers.
func TestAgentCommandLooksUpAndHeartbeats(t *testing.T) {
	bin := buildBinary(t)
	const uuid, mac, tok = "3f1c2b4a-0000-4000-8000-000000000001", "52:54:00:ab:cd:01", "f00dbabef00dbabef00dbabef00dbabe"
	api := agentapi.New(agentNodes{uuid: uuid, mac: mac}, agentapi.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := api.Listen(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	api.Expect(uuid, tok)
	root := t.TempDir()
	for p, c := range map[string]string{
		"proc/cmdline":                 "console=ttyS0 ipa-api-url=" + api.URL() + " ipa-agent-token=" + tok + " ipa-advertise-host=127.0.0.1\n",
		"proc/uptime":                  "7.25 1.00\n",
		"sys/class/net/eth0/address":   mac + "\n",
		"sys/class/net/eth0/device/id": "x",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, bin, "agent", "--root", root, "--listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	hb, err := api.WaitHeartbeat(ctx, uuid, time.Time{})
	if err != nil {
		t.Fatalf("no heartbeat from lightsout agent: %v", err)
	}
	if !strings.HasPrefix(hb.AgentURL, "http://127.0.0.1:") || hb.AgentVersion != deployagent.Version {
		t.Errorf("heartbeat %+v", hb)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "LIGHTSOUT-AGENT-UP ") {
			break
		}
	}
	got := strings.Join(lines, "\n")
	if !strings.Contains(got, "LIGHTSOUT-AGENT-START uptime=7.25") || !strings.Contains(got, "LIGHTSOUT-AGENT-UP url="+hb.AgentURL+" uptime=7.25") {
		t.Errorf("console:\n%s", got)
	}
	if strings.Contains(got, tok) {
		t.Error("the agent token was printed")
	}
}

type agentNodes struct{ uuid, mac string }

func (n agentNodes) NodeByUUID(_ context.Context, u string) (agentapi.Node, error) {
	if u == n.uuid {
		return agentapi.Node{UUID: n.uuid}, nil
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

func (n agentNodes) NodeByMACs(_ context.Context, macs []string) (agentapi.Node, error) {
	for _, m := range macs {
		if m == n.mac {
			return agentapi.Node{UUID: n.uuid}, nil
		}
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}
