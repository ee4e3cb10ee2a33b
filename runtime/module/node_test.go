package module_test

import (
	"context"
	"testing"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

func TestRunNode(t *testing.T) {
	const own, other = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "2c37d1a0-5b1e-4f7e-9d2c-0e1f2a3b4c5d"
	withNode := moduletest.NewRun(context.Background(), &moduletest.Node{ID: own, NodeName: "n1"})
	nodeless := moduletest.NewRun(context.Background(), nil)
	tests := []struct {
		name string
		run  module.Run
		ref  string
		want string // uuid, or "" for forbidden
	}{
		{"nil is the run's node", withNode, "", own},
		{"own uuid", withNode, own, own},
		{"own uuid, upper case", withNode, "1BE26C0B-03F2-4D2E-AE87-C02D7F33C123", own},
		{"own name", withNode, "n1", own},
		{"own name, padded", withNode, " n1 ", own},
		{"other uuid", withNode, other, ""},
		{"other name", withNode, "n2", ""},
		{"node-less: nil", nodeless, "", ""},
		{"node-less: a uuid", nodeless, other, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := module.RunNode(tt.run, "op", tt.ref)
			if tt.want == "" {
				if module.CodeOf(err) != module.CodeForbidden {
					t.Fatalf("RunNode(%q) = %q, %v; want forbidden", tt.ref, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("RunNode(%q) = %q, %v; want %s", tt.ref, got, err, tt.want)
			}
		})
	}
	for name, want := range map[string]string{"image-" + own: "", "boot-" + other + ".iso": other, "fw.bin": "",
		own + "-" + other: other, "image-" + "2C37D1A0-5B1E-4F7E-9D2C-0E1F2A3B4C5D": "2C37D1A0-5B1E-4F7E-9D2C-0E1F2A3B4C5D"} {
		if got := module.ForeignUUID(name, own); got != want {
			t.Errorf("ForeignUUID(%q) = %q, want %q", name, got, want)
		}
		if err := module.CheckName(withNode, "op", name); (err != nil) != (want != "") {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}
