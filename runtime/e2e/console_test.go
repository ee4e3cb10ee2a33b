package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// TestConsoleCapture: a deploy records the node's serial console (IPMI
// SOL) in its run: the emulated ramdisk's log lines, the iLO password the
// server printed masked; a failed deploy's console shows the failure the
// ramdisk printed.
func TestConsoleCapture(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 2)})
	img, data := testImage(t, t.TempDir(), 1<<20)
	good := app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}
	tests := []struct {
		name, node string
		failures   *ramdisk.Failures
		want       []string
	}{
		{name: "deploy succeeds", node: "gen10-0",
			want: []string{"ironic-python-agent[INFO]: ramdisk agent started", "ironic-python-agent[INFO]: looked up"}},
		{name: "deploy fails", node: "gen10-1", failures: &ramdisk.Failures{FailCommands: []string{"prepare_image"}},
			want: []string{"ironic-python-agent[ERROR]: command failed command=standby.prepare_image error=Command execution failed: injected failure of standby.prepare_image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := open(t, f, "")
			e.importFleet()
			if tt.failures != nil {
				f.rd.SetFailures(tt.node, *tt.failures)
			}
			e.makeAvailable(tt.node)
			if _, err := e.app.PrepareDeploy(ctx, tt.node, good); err != nil {
				t.Fatal(err)
			}
			pw := fmt.Sprint(e.node(tt.node).DriverInfo["ilo_password"])
			// printed before the deploy, still unread: the capture reads it
			f.server(t, tt.node).ConsoleWrite([]byte("debug: ilo password " + pw + "\r\n"))
			res := e.runs(app.ScriptDeploy, []string{tt.node}, nil)[tt.node]
			if tt.failures == nil {
				e.mustSucceed(res)
			} else if res.Succeeded() {
				t.Fatalf("deploy succeeded despite %+v", *tt.failures)
			}
			out, err := e.app.RunConsole(ctx, res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("run %d console lacks %q:\n%s", res.RunID, w, out)
				}
			}
			if strings.Contains(out, pw) || !strings.Contains(out, "debug: ilo password "+secrets.Mask) {
				t.Errorf("run %d console: the password is not masked:\n%s", res.RunID, out)
			}
			e.noSecretsAtRest([]string{pw})
		})
	}
}
