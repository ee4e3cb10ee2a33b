package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
)

// TestDuplicateMACsEveryPath: create, set and import refuse a MAC another
// node owns with a ValidationError (exit 2) naming the MAC and the owner;
// a refused import creates nothing.
func TestDuplicateMACsEveryPath(t *testing.T) {
	a := openApp(t)
	ctx := context.Background()
	di := map[string]any{"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}
	if _, err := a.CreateNode(ctx, app.NodeSpec{Name: "a", Driver: "agent_ilo", DriverInfo: di, Ports: []string{"52:54:00:00:00:01"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateNode(ctx, app.NodeSpec{Name: "b", Driver: "agent_ilo", DriverInfo: di}); err != nil {
		t.Fatal(err)
	}
	importFile := func(doc string) string {
		p := filepath.Join(t.TempDir(), "nodes.json")
		os.WriteFile(p, []byte(doc), 0o600)
		return p
	}
	node := func(name, mac string) string {
		return `{"name": "` + name + `", "driver_info": {"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}, "ports": [{"address": "` + mac + `"}]}`
	}
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"create", func() error {
			_, err := a.CreateNode(ctx, app.NodeSpec{Name: "c", Driver: "agent_ilo", DriverInfo: di, Ports: []string{"52:54:00:00:00:01"}})
			return err
		}, "port 52:54:00:00:00:01 already belongs to node a: remove it from a first"},
		{"set", func() error {
			_, err := a.UpdateNode(ctx, "b", app.NodeChange{AddPorts: []string{"52:54:00:00:00:01"}})
			return err
		}, "already belongs to node a"},
		{"import against an existing node", func() error {
			_, err := a.ImportNodes(ctx, importFile("["+node("c", "52:54:00:00:00:03")+","+node("d", "52:54:00:00:00:01")+"]"))
			return err
		}, "node d: port 52:54:00:00:00:01 already belongs to node a"},
		{"import, twice in the file", func() error {
			_, err := a.ImportNodes(ctx, importFile("["+node("c", "52:54:00:00:00:03")+","+node("d", "52:54:00:00:00:03")+"]"))
			return err
		}, "port 52:54:00:00:00:03 already belongs to node c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var ve *app.ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a ValidationError with %q", err, tt.want)
			}
		})
	}
	for _, n := range []string{"c", "d"} {
		if _, err := a.Store.GetNode(ctx, n); err == nil {
			t.Errorf("node %s was created by a refused request", n)
		}
	}
	b, _ := a.Store.GetNode(ctx, "b")
	if len(b.Ports) != 0 {
		t.Errorf("b took a port: %v", b.Ports)
	}
}
