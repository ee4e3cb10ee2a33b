package redfish

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/ilo/internal/replaytest"
)

// The three captured trees in ../shared/fixtures/captures (see its README).
const (
	treeGen10Plus = "cray-xl675d-gen10plus-ilo5"
	treeGen11     = "hpe-dl380a-gen11-ilo6"
	treeGen12     = "hpe-dl380a-gen12-ilo7"
)

var allTrees = []string{treeGen10Plus, treeGen11, treeGen12}

// replayClient serves one captured tree and returns a Redfish client of it.
func replayClient(t *testing.T, tree string) (*Client, *replaytest.Server) {
	t.Helper()
	srv := replaytest.Start(t, filepath.Join(replaytest.CapturesDir(t), tree))
	o, err := iloapi.ParseDriverInfo(srv.DriverInfo())
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
	return c, srv
}

// writes returns the non-GET, non-session requests the server saw.
func writes(srv *replaytest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if r.Method == "GET" || strings.Contains(strings.ToLower(r.Path), "sessionservice") {
			continue
		}
		out = append(out, r.Method+" "+r.Path+" "+string(r.Body))
	}
	return out
}

// Boot mode on the captured trees. How the expected values were derived:
//   - gen10plus (iLO 5 v2.70): Systems/1/bios Attributes.BootMode is "Uefi"
//     and UefiOptimizedBoot "Enabled"; Oem.Hpe.Bios.UefiClass is 3.
//   - gen11 (iLO 6 v1.66) and gen12 (iLO 7 1.13): Systems/1/bios has no
//     BootMode and no UefiOptimizedBoot attribute; Oem.Hpe.Bios.UefiClass
//     is 3, so the machine is UEFI-only: current and pending are UEFI.
//   - all three: SecureBoot SecureBootCurrentBoot "Disabled", with a
//     #SecureBoot.ResetKeys action.
func TestCapturedBootModeAndSecureBoot(t *testing.T) {
	ctx := context.Background()
	for _, tree := range allTrees {
		t.Run(tree, func(t *testing.T) {
			c, srv := replayClient(t, tree)
			for name, get := range map[string]func(context.Context) (string, error){
				"current": c.GetCurrentBootMode, "pending": c.GetPendingBootMode,
			} {
				if got, err := get(ctx); err != nil || got != iloapi.BootModeUEFI {
					t.Errorf("%s boot mode = %q, %v; want UEFI", name, got, err)
				}
			}
			if got, err := c.GetSupportedBootMode(ctx); err != nil || got != iloapi.SupportedUEFIOnly {
				t.Errorf("supported boot mode = %q, %v; want %q", got, err, iloapi.SupportedUEFIOnly)
			}
			if err := c.SetPendingBootMode(ctx, "LEGACY"); !iloapi.IsNotSupported(err) {
				t.Errorf("set LEGACY on a UEFI-only machine: %v, want not_supported", err)
			}
			before := len(writes(srv))
			if err := c.SetPendingBootMode(ctx, "UEFI"); err != nil {
				t.Fatalf("set UEFI: %v", err)
			}
			w := writes(srv)[before:]
			if tree == treeGen10Plus {
				// BootMode and UefiOptimizedBoot exist there: both are written.
				if len(w) != 1 || !strings.Contains(w[0], `"BootMode":"Uefi"`) || !strings.Contains(w[0], `"UefiOptimizedBoot":"Enabled"`) {
					t.Errorf("set UEFI on iLO 5 sent %q", w)
				}
			} else if len(w) != 0 {
				t.Errorf("set UEFI on a UEFI-only BIOS without BootMode sent %q; want nothing", w)
			}

			on, err := c.GetSecureBootMode(ctx)
			if err != nil || on {
				t.Errorf("secure boot = %v, %v; want false (SecureBootCurrentBoot Disabled)", on, err)
			}
			for _, enable := range []bool{true, false} {
				if err := c.SetSecureBootMode(ctx, enable); err != nil {
					t.Fatalf("set secure boot %v: %v", enable, err)
				}
				sb := srv.Doc("/redfish/v1/Systems/1/SecureBoot")
				if sb["SecureBootEnable"] != enable {
					t.Errorf("after set %v SecureBootEnable = %v", enable, sb["SecureBootEnable"])
				}
			}
			for op, f := range map[string]func(context.Context) error{"ResetAllKeysToDefault": c.ResetSecureBootKeys, "DeleteAllKeys": c.ClearSecureBootKeys} {
				before := len(writes(srv))
				if err := f(ctx); err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				w := writes(srv)[before:]
				if len(w) != 1 || !strings.Contains(w[0], "SecureBoot.ResetKeys") || !strings.Contains(w[0], op) {
					t.Errorf("%s sent %q", op, w)
				}
			}
		})
	}
}

// A BIOS without BootMode on a machine that also boots legacy: the mode is
// unknown and no attribute is invented.
func TestSetPendingBootModeWithoutAttribute(t *testing.T) {
	system := map[string]any{"Oem": map[string]any{"Hpe": map[string]any{"Bios": map[string]any{"UefiClass": json.Number("2")}}}}
	bios := map[string]any{"Attributes": map[string]any{"Other": "x"}}
	if got := EffectiveBootMode(system, bios); got != "UNKNOWN" {
		t.Errorf("EffectiveBootMode = %q, want UNKNOWN", got)
	}
	system["Oem"].(map[string]any)["Hpe"].(map[string]any)["Bios"].(map[string]any)["UefiClass"] = json.Number("3")
	if got := EffectiveBootMode(system, bios); got != iloapi.BootModeUEFI {
		t.Errorf("EffectiveBootMode (UefiClass 3) = %q, want UEFI", got)
	}
}
