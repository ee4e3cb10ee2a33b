package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/ilo/internal/replaytest"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// proliantutilsInspect asks Debian's python3-proliantutils (Redfish only,
// as it drives iLO 5+) for the inspection answers of the iLO at host.
const proliantutilsInspect = `
import json, sys, warnings
warnings.filterwarnings("ignore")
from proliantutils.ilo import client
c = client.IloClient(sys.argv[1], sys.argv[2], sys.argv[3], timeout=30, port=None, cacert=sys.argv[4], use_redfish_only=True)
out = {}
for name, fn in [("essential", c.get_essential_properties), ("boot_mode", c.get_current_boot_mode),
                 ("persistent", c.get_persistent_boot_device), ("caps", c.get_server_capabilities)]:
    try:
        out[name] = fn()
    except Exception as e:
        out[name] = {"error": type(e).__name__, "message": str(e)[:300]}
print(json.dumps(out, default=str))
`

// TestCapturedInspectionMatchesProliantutils runs proliantutils and our
// client against the same captured trees and compares what both compute:
// memory, CPUs, architecture, local_gb, MACs, current boot mode and GPU
// count must be equal. Where we differ on purpose (docs/ilo.md) the test
// says so: the persistent boot device, where proliantutils reports "NONE"
// for a first entry such as HD.Slot.25.3 that we read as the disk; and
// trees proliantutils cannot read at all (no trailing slash on the Systems
// collection), whose values TestCapturedInspection checks instead.
func TestCapturedInspectionMatchesProliantutils(t *testing.T) {
	testenv.RequireTools(t, "/usr/bin/python3")
	if out, err := exec.Command("/usr/bin/python3", "-c", "import proliantutils.ilo.client").CombinedOutput(); err != nil {
		if os.Getenv("LIGHTSOUT_INTEGRATION") != "" {
			t.Fatalf("python3-proliantutils: %v\n%s", err, out)
		}
		t.Skipf("python3-proliantutils not installed: %s", out)
	}
	ctx := context.Background()
	for _, tree := range allTrees {
		t.Run(tree, func(t *testing.T) {
			// the tree served by `lightsout sim --capture` (its CA verifies)
			s, err := sim.New(sim.Options{Captures: []string{filepath.Join(replaytest.CapturesDir(t), tree)}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			srv := s.Servers()[0]
			c := simClient(t, simtest.DriverInfo(s, 0))
			cmd := exec.Command("/usr/bin/python3", "-c", proliantutilsInspect, srv.Addr(), srv.Username(), srv.Password(), s.CAFile())
			// no proxy, no CA bundle from the environment: talk to 127.0.0.1 with the simulator's CA
			for _, kv := range os.Environ() {
				k, _, _ := strings.Cut(kv, "=")
				switch strings.ToUpper(k) {
				case "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE":
					continue
				}
				cmd.Env = append(cmd.Env, kv)
			}
			cmd.Env = append(cmd.Env, "NO_PROXY=127.0.0.1,localhost", "PYTHONWARNINGS=ignore")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			raw, err := cmd.Output()
			if err != nil && strings.Contains(stderr.String(), `The Redfish System "1" was not found`) &&
				strings.Contains(stderr.String(), "/redfish/v1/1 not found") {
				// proliantutils joins the Systems collection path and the
				// system id with urljoin, which needs a trailing slash
				// ("/redfish/v1/Systems/"); these trees have none, so it
				// cannot read them at all. The documented difference
				// (docs/ilo.md): our answers on these trees are checked
				// against values derived from the raw JSON by
				// proliantutils' rules in TestCapturedInspection.
				t.Logf("proliantutils cannot read %s (no trailing slash on the Systems collection): compared in TestCapturedInspection instead", tree)
				return
			}
			if err != nil {
				t.Fatalf("proliantutils: %v\n%s\n%s", err, raw, stderr.String())
			}
			var pu struct {
				Essential struct {
					Properties struct {
						MemoryMB int    `json:"memory_mb"`
						CPUs     int    `json:"cpus"`
						CPUArch  string `json:"cpu_arch"`
						LocalGB  int    `json:"local_gb"`
					} `json:"properties"`
					MACs  map[string]string `json:"macs"`
					Error string            `json:"error"`
				} `json:"essential"`
				BootMode   any            `json:"boot_mode"`
				Persistent any            `json:"persistent"`
				Caps       map[string]any `json:"caps"`
			}
			if err := json.Unmarshal(raw, &pu); err != nil {
				t.Fatalf("proliantutils output: %v\n%s", err, raw)
			}
			if pu.Essential.Error != "" {
				t.Fatalf("proliantutils get_essential_properties failed: %s", raw)
			}
			p, err := c.GetEssentialProperties(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pp := pu.Essential.Properties
			if p.MemoryMB != pp.MemoryMB || p.CPUs != pp.CPUs || p.CPUArch != pp.CPUArch || p.LocalGB != pp.LocalGB {
				t.Errorf("ours memory %d cpus %d arch %s local_gb %d; proliantutils %d %d %s %d",
					p.MemoryMB, p.CPUs, p.CPUArch, p.LocalGB, pp.MemoryMB, pp.CPUs, pp.CPUArch, pp.LocalGB)
			}
			if len(p.MACs) != len(pu.Essential.MACs) {
				t.Errorf("ours macs %v; proliantutils %v", p.MACs, pu.Essential.MACs)
			}
			for port, mac := range pu.Essential.MACs {
				if !strings.EqualFold(p.MACs[port], mac) {
					t.Errorf("macs[%s]: ours %q, proliantutils %q", port, p.MACs[port], mac)
				}
			}
			if mode, err := c.GetCurrentBootMode(ctx); err != nil || mode != fmt.Sprint(pu.BootMode) {
				t.Errorf("boot mode: ours %q (%v), proliantutils %v", mode, err, pu.BootMode)
			}
			caps, err := c.GetServerCapabilities(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := caps["pci_gpu_devices"], fmt.Sprint(pu.Caps["pci_gpu_devices"]); pu.Caps["pci_gpu_devices"] != nil && got != want {
				t.Errorf("pci_gpu_devices: ours %q, proliantutils %q", got, want)
			}
			ours, _ := c.GetPersistentBootDevice(ctx)
			// docs/ilo.md: proliantutils answers NONE for a first entry such
			// as HD.Slot.25.3 that is a disk; lightsout answers HDD
			t.Logf("persistent boot device: ours %s, proliantutils %v", ours, pu.Persistent)
			if theirs := fmt.Sprint(pu.Persistent); theirs != ours && !(ours == "HDD" && theirs == "NONE") {
				t.Errorf("persistent boot device: ours %q, proliantutils %q", ours, theirs)
			}
		})
	}
}

// simClient is a Redfish client of the simulated iLO described by info.
func simClient(t *testing.T, info map[string]any) *Client {
	t.Helper()
	o, err := iloapi.ParseDriverInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := iloapi.NewTransport(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	c := New(tr)
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
