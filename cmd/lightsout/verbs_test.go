package main

import (
	"strings"
	"testing"
)

// TestVerbsBadInput: the playbook verbs refuse bad requests with exit 2 and
// a message naming the problem, before any run starts.
func TestVerbsBadInput(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	c.must("node", "manage", "n1")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no node and no --all", []string{"inspect"}, "name the nodes or use --all"},
		{"nodes and --all", []string{"inspect", "n1", "--all"}, "name the nodes or use --all"},
		{"unknown node", []string{"inspect", "ghost"}, "ghost"},
		{"deploy a manageable node", []string{"deploy", "n1", "--image-source", "/x.img", "--image-checksum", strings.Repeat("a", 32)},
			"node n1 is manageable: deploy starts from available"},
		{"undeploy a manageable node", []string{"undeploy", "n1"}, "undeploy starts from active"},
		{"deploy --all with nothing available", []string{"deploy", "--all"}, "no node is in a state deploy starts from"},
		{"clean without --steps", []string{"clean", "n1"}, `required flag(s) "steps"`},
		{"clean with bad JSON", []string{"clean", "n1", "--steps", "[{"}, "--steps"},
		{"clean with an unknown interface", []string{"clean", "n1", "--steps", `[{"interface": "disk", "step": "x"}]`}, "--steps[0].interface"},
		{"clean with an empty list", []string{"clean", "n1", "--steps", `[]`}, "the list is empty"},
		{"boot-iso without --iso", []string{"boot-iso", "n1"}, `required flag(s) "iso"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := c.run(tt.args...)
			if code != 2 || !strings.Contains(out+errOut, tt.msg) {
				t.Fatalf("exit %d (want 2), output %q lacks %q", code, out+errOut, tt.msg)
			}
		})
	}
	if out := c.must("runs", "list"); strings.Count(out, "\n") > 1 {
		t.Fatalf("a refused verb started a run:\n%s", out)
	}
	if strings.Contains(c.allOut.String(), sentinel) {
		t.Fatal("the iLO password leaked")
	}
}
