package e2e_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

// downloadISO fetches a published ISO from its URL (as the iLO does) into dir.
func downloadISO(t *testing.T, dir, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET boot ISO: %s", resp.Status)
	}
	f, err := os.CreateTemp(dir, "boot-*.iso")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// bootISOArtifacts lists the node's not-yet-deleted boot ISO artifacts.
func (e *env) bootISOArtifacts(uuid string) []store.Artifact {
	e.t.Helper()
	arts, err := e.app.Store.Artifacts(context.Background(), uuid, false)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Artifact
	for _, a := range arts {
		if a.Kind == "boot_iso" {
			out = append(out, a)
		}
	}
	return out
}

// An iscsi_ilo netboot deploy of a partition image, then a reboot through
// the power path, then teardown, on a BIOS Gen8 and a UEFI Gen10: after the
// deploy the CDROM holds the published boot ISO (persistent boot CD) whose
// isolinux.cfg and grub.cfg carry root=UUID=<the image's filesystem UUID>;
// `node power reboot` attaches a freshly published ISO (another URL) and
// deletes the old one; teardown leaves no published ISO, no artifact and
// the media ejected.
func TestISCSINetbootDeploy(t *testing.T) {
	requireISCSI(t)
	for _, tc := range []struct {
		name, node, mode string
		gens             []int
	}{
		{"bios gen8", "gen8-0", "bios", []int{1, 0, 0}},
		{"uefi gen10", "gen10-0", "uefi", []int{0, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == "uefi" {
				testenv.RequireTools(t, "grub-mkstandalone")
			}
			f := newFleet(t, fleetOptions{nodes: gens(tc.gens...), diskSize: 1100 << 20})
			e := open(t, f, "")
			e.importFleet()
			ctx := context.Background()
			dir := t.TempDir()
			img, data, fsUUID := partitionImage(t, dir, 16)
			kernel, ramdisk := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
			for _, p := range []string{kernel, ramdisk} {
				if err := os.WriteFile(p, []byte("instance "+filepath.Base(p)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e.makeAvailable(tc.node)
			port := freeTCPPort(t)
			if _, err := e.app.UpdateNode(ctx, tc.node, app.NodeChange{Driver: "iscsi_ilo",
				DriverInfo: map[string]any{"iscsi_port": port}}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.app.PrepareDeploy(ctx, tc.node, app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.app.UpdateNode(ctx, tc.node, app.NodeChange{InstanceInfo: map[string]any{
				"kernel": kernel, "ramdisk": ramdisk, "root_gb": 1, "kernel_append_params": "console=ttyS0 ro",
				"capabilities": map[string]any{"boot_mode": tc.mode, "boot_option": "netboot"}}}); err != nil {
				t.Fatal(err)
			}

			res := e.runs(app.ScriptDeploy, []string{tc.node}, nil)[tc.node]
			e.mustSucceed(res)
			n := e.node(tc.node)
			if n.ProvisionState != states.Active || n.DriverInternalInfo["root_uuid_or_disk_id"] != fsUUID {
				t.Fatalf("state %s root_uuid_or_disk_id %v, want active and %s", n.ProvisionState, n.DriverInternalInfo["root_uuid_or_disk_id"], fsUUID)
			}
			srv := f.server(t, tc.node)
			st := srv.State()
			cd := st.Media["CDROM"]
			if !cd.Inserted || !strings.Contains(cd.URL, "boot-"+n.UUID+"-r") {
				t.Fatalf("CDROM after deploy: %+v, want the published boot ISO", cd)
			}
			if len(st.PersistentBoot) == 0 || st.PersistentBoot[0] != "CDROM" {
				t.Errorf("persistent boot %v, want CDROM first", st.PersistentBoot)
			}
			if boots := f.bootsOf(tc.node); len(boots) == 0 || boots[len(boots)-1].BootDevice != "CDROM" ||
				boots[len(boots)-1].Media["CDROM"] != cd.URL {
				t.Errorf("the instance did not boot the boot ISO: last boot %+v", boots[len(boots)-1])
			}
			want := "root=UUID=" + fsUUID + " console=ttyS0 ro"
			iso := downloadISO(t, dir, cd.URL)
			cfgs := []string{"isolinux/isolinux.cfg"}
			if tc.mode == "uefi" {
				cfgs = append(cfgs, "EFI/BOOT/grub.cfg")
			}
			for _, cfg := range cfgs {
				b, err := image.ReadISOFile(iso, cfg)
				if err != nil || !strings.Contains(string(b), want) {
					t.Errorf("%s: %v; lacks %q:\n%s", cfg, err, want, b)
				}
			}
			first := e.bootISOArtifacts(n.UUID)
			if len(first) != 1 {
				t.Fatalf("boot ISO artifacts after deploy: %+v, want one", first)
			}

			// reboot through the power path: a fresh ISO, the old one deleted
			res = e.runs(app.ScriptNodePower, []string{tc.node}, map[string]string{"action": "reboot"})[tc.node]
			e.mustSucceed(res)
			cd2 := srv.State().Media["CDROM"]
			if !cd2.Inserted || cd2.URL == cd.URL || !strings.Contains(cd2.URL, "boot-"+n.UUID+"-r") {
				t.Fatalf("CDROM after reboot: %+v, want a freshly published boot ISO (not %s)", cd2, cd.URL)
			}
			if boots := f.bootsOf(tc.node); boots[len(boots)-1].BootDevice != "CDROM" || boots[len(boots)-1].Media["CDROM"] != cd2.URL {
				t.Errorf("the reboot did not boot the fresh boot ISO: %+v", boots[len(boots)-1])
			}
			if resp, err := http.Get(cd.URL); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Error("the previous boot ISO is still served after the reboot")
				}
			}
			second := e.bootISOArtifacts(n.UUID)
			if len(second) != 1 || second[0].Location == first[0].Location {
				t.Errorf("boot ISO artifacts after reboot: %+v, want only a new one (not %s)", second, first[0].Location)
			}
			iso2 := downloadISO(t, dir, cd2.URL)
			if line, err := image.KernelCmdline(iso2); err != nil || line != want {
				t.Errorf("re-attached ISO command line %q, %v; want %q", line, err, want)
			}
			if a, b := fileBytes(t, iso), fileBytes(t, iso2); !qemutest.SameBytes(t, a, b) {
				t.Errorf("the re-attached ISO differs from the deployed one (the build is not reproducible): %d, %d bytes", len(a), len(b))
			}

			// teardown: nothing published left, media ejected, root UUID forgotten
			res = e.runs(app.ScriptTeardown, []string{tc.node}, nil)[tc.node]
			e.mustSucceed(res)
			e.noMediaLeft(tc.node)
			if m := srv.State().Media["CDROM"]; m.Inserted && strings.Contains(m.URL, "boot-"+n.UUID) {
				t.Errorf("the boot ISO is still inserted after teardown: %+v", m)
			}
			if v, ok := e.node(tc.node).DriverInternalInfo["root_uuid_or_disk_id"]; ok {
				t.Errorf("root_uuid_or_disk_id %v left after teardown", v)
			}
		})
	}
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
