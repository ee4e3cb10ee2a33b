package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

// TestAgentNodeMasksCopiedSecrets: what the unauthenticated agent lookup
// returns holds neither the node's password a run copied into
// instance_info, nor URL credentials, nor the agent token.
func TestAgentNodeMasksCopiedSecrets(t *testing.T) {
	const pw = "Copied-Pw-5521"
	n := &store.Node{UUID: "u", Name: "n", DriverInfo: map[string]any{"ilo_password": pw},
		Properties:         map[string]any{"p": "x" + pw, "cpus": float64(2)},
		InstanceInfo:       map[string]any{"x": pw, "image_source": "http://u:ImgPw-77@h/i.raw", "image_checksum": "sha256:ab"},
		DriverInternalInfo: map[string]any{"agent_token": "Tok-123456", "deep": []any{map[string]any{"y": pw}}}}
	got := app.AgentNode(n)
	b, _ := json.Marshal(got)
	for _, s := range []string{pw, "ImgPw-77", "Tok-123456"} {
		if strings.Contains(string(b), s) {
			t.Errorf("lookup node holds %q: %s", s, b)
		}
	}
	if got.InstanceInfo["image_checksum"] != "sha256:ab" || got.InstanceInfo["image_source"] != "http://u:******@h/i.raw" {
		t.Errorf("lookup node lost plain values: %v", got.InstanceInfo)
	}
	if n.InstanceInfo["x"] != pw {
		t.Error("AgentNode changed the stored node")
	}
}
