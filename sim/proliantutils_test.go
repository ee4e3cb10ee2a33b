package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim"
)

// suiteHardware gives each generation a distinct inventory so results
// cannot match by accident: gen8 two logical drives and two GPUs, gen9 no
// RAID volume, gen10 one GPU and three CPUs.
func suiteHardware(name string, g sim.Generation, idx int, hw *sim.Hardware) {
	switch g {
	case sim.Gen8:
		hw.LogicalDrivesGB = []int{300, 200}
		hw.GPUs = []sim.GPU{{Vendor: "NVIDIA", Name: "Tesla K80"}, {Vendor: "NVIDIA", Name: "Tesla K80"}}
		hw.MemoryMB = 49152
	case sim.Gen9:
		hw.LogicalDrivesGB = []int{}
		hw.CPUs = []sim.CPU{{Model: "Intel(R) Xeon(R) CPU E5-2660 v3", Cores: 10, Threads: 20, SpeedMHz: 2600}}
	case sim.Gen10:
		hw.GPUs = []sim.GPU{{Vendor: "NVIDIA", Name: "Tesla V100"}}
		c := sim.CPU{Model: "Intel(R) Xeon(R) Gold 6230", Cores: 20, Threads: 40, SpeedMHz: 2100}
		hw.CPUs = []sim.CPU{c, c, c}
		hw.LogicalDrivesGB = []int{480}
	}
}

func TestProliantutilsSuite(t *testing.T) {
	requireProliantutils(t)
	s, err := sim.New(sim.Options{
		Nodes:        []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen9, Count: 1}, {Generation: sim.Gen10, Count: 1}},
		Hardware:     suiteHardware,
		DiskSize:     1 << 20,
		ILOResetTime: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	img := imageServer(t)
	var onceHits atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onceHits.Add(1) == 1 {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(flaky.Close)
	var flakyUsed atomic.Bool
	for _, srv := range s.Servers() {
		t.Run(string(srv.Generation()), func(t *testing.T) {
			t.Parallel()
			runSuite(t, s, srv, img.URL, func() string {
				if flakyUsed.Swap(true) {
					return ""
				}
				return flaky.URL + "/once/boot.iso"
			})
		})
	}
}

func runSuite(t *testing.T, s *sim.Sim, srv *sim.Server, imgURL string, flakyURL func() string) {
	g := srv.Generation()
	hw := srv.Hardware()
	d := startDriver(t, s, srv)
	if d.model == "" {
		t.Fatalf("IloClient: %s", d.err)
	}
	st := func() sim.State { return srv.State() }
	eqStr := func(op string, r pyResult, want string) {
		t.Helper()
		if got := r.str(t); got != want {
			t.Errorf("%s = %q, want %q (simulator state)", op, got, want)
		}
	}

	t.Run("product name", func(t *testing.T) {
		if d.model != hw.Model {
			t.Errorf("IloClient.model = %q, want %q", d.model, hw.Model)
		}
		eqStr("get_product_name", d.must("get_product_name"), hw.Model)
		var uuid []string
		if err := json.Unmarshal(d.must("get_host_uuid").Result, &uuid); err != nil || len(uuid) != 2 || uuid[0] != hw.Model || uuid[1] != hw.UUID {
			t.Errorf("get_host_uuid = %v (%v), want [%s %s]", uuid, err, hw.Model, hw.UUID)
		}
	})

	t.Run("power", func(t *testing.T) {
		eqStr("get_host_power_status", d.must("get_host_power_status"), st().Power)
		boots := st().BootCount
		d.must("set_host_power", "ON")
		if s := st(); s.Power != "ON" || s.BootCount != boots+1 {
			t.Fatalf("after set_host_power ON: power %s boots %d, want ON and %d", s.Power, s.BootCount, boots+1)
		}
		eqStr("get_host_power_status", d.must("get_host_power_status"), "ON")
		r := d.must("reset_server")
		if g == sim.Gen8 {
			eqStr("reset_server", r, "Server being reset.")
		}
		if s := st(); s.Power != "ON" || s.BootCount != boots+2 {
			t.Errorf("after reset_server: power %s boots %d, want ON and %d", s.Power, s.BootCount, boots+2)
		}
		d.must("press_pwr_btn")
		if p := st().Power; p != "OFF" {
			t.Errorf("press_pwr_btn on a running server: power %s, want OFF", p)
		}
		d.must("press_pwr_btn")
		if p := st().Power; p != "ON" {
			t.Errorf("press_pwr_btn on an off server: power %s, want ON", p)
		}
		d.must("hold_pwr_btn")
		if p := st().Power; p != "OFF" {
			t.Errorf("hold_pwr_btn: power %s, want OFF", p)
		}
		eqStr("get_host_power_status", d.must("get_host_power_status"), "OFF")
		d.must("set_host_power", "OFF") // already off: no error
		if p := st().Power; p != "OFF" {
			t.Errorf("set_host_power OFF twice: power %s", p)
		}
	})

	t.Run("one-time boot", func(t *testing.T) {
		eqStr("get_one_time_boot", d.must("get_one_time_boot"), "Normal")
		d.must("set_one_time_boot", "CDROM")
		if v := st().OneTimeBoot; v != "CDROM" {
			t.Fatalf("state OneTimeBoot = %q after set_one_time_boot(CDROM)", v)
		}
		eqStr("get_one_time_boot", d.must("get_one_time_boot"), "CDROM")
		d.must("set_host_power", "ON")
		if ev, _ := srv.LastBoot(); ev.BootDevice != "CDROM" {
			t.Errorf("boot device after one-time CDROM = %q", ev.BootDevice)
		}
		eqStr("get_one_time_boot after boot", d.must("get_one_time_boot"), "Normal")
		d.must("set_host_power", "OFF")
	})

	t.Run("persistent boot", func(t *testing.T) {
		for _, dev := range []string{"NETWORK", "HDD", "CDROM"} {
			d.must("update_persistent_boot", []string{dev})
			if p := st().PersistentBoot; p[0] != dev {
				t.Errorf("state boot order %v after update_persistent_boot(%s)", p, dev)
			}
			eqStr("get_persistent_boot_device", d.must("get_persistent_boot_device"), dev)
		}
	})

	t.Run("boot modes", func(t *testing.T) {
		want := map[string]string{"LEGACY_ONLY": "legacy bios only", "LEGACY_UEFI": "legacy bios and uefi", "UEFI_ONLY": "uefi only"}[hw.SupportedBootModes]
		eqStr("get_supported_boot_mode", d.must("get_supported_boot_mode"), want)
		eqStr("get_current_boot_mode", d.must("get_current_boot_mode"), st().BootMode)
		eqStr("get_pending_boot_mode", d.must("get_pending_boot_mode"), st().PendingBootMode)
		if g == sim.Gen8 {
			r := d.call("set_pending_boot_mode", "UEFI")
			if r.OK || r.Error != "IloCommandNotSupportedError" {
				t.Errorf("set_pending_boot_mode(UEFI) on a legacy-only Gen8 = %s, want IloCommandNotSupportedError", r)
			}
			if p := st().PendingBootMode; p != "LEGACY" {
				t.Errorf("pending mode changed to %s", p)
			}
			return
		}
		d.must("set_pending_boot_mode", "LEGACY")
		if s := st(); s.PendingBootMode != "LEGACY" || s.BootMode != "UEFI" {
			t.Fatalf("after set_pending_boot_mode(LEGACY): current %s pending %s", s.BootMode, s.PendingBootMode)
		}
		eqStr("get_pending_boot_mode", d.must("get_pending_boot_mode"), "LEGACY")
		eqStr("get_current_boot_mode", d.must("get_current_boot_mode"), "UEFI")
		d.must("set_host_power", "ON")
		if ev, _ := srv.LastBoot(); ev.BootMode != "LEGACY" || st().BootMode != "LEGACY" {
			t.Errorf("power-on did not apply the pending mode: event %s state %s", ev.BootMode, st().BootMode)
		}
		eqStr("get_current_boot_mode", d.must("get_current_boot_mode"), "LEGACY")
		d.must("set_pending_boot_mode", "UEFI")
		d.must("reset_server")
		eqStr("get_current_boot_mode after reset", d.must("get_current_boot_mode"), "UEFI")
		d.must("set_host_power", "OFF")
	})

	t.Run("secure boot", func(t *testing.T) {
		if g == sim.Gen8 {
			if r := d.call("get_secure_boot_mode"); r.OK || r.Error != "IloCommandNotSupportedError" {
				t.Errorf("get_secure_boot_mode on Gen8 = %s, want IloCommandNotSupportedError", r)
			}
			return
		}
		if r := d.must("get_secure_boot_mode"); string(r.Result) != "false" {
			t.Errorf("get_secure_boot_mode = %s, want false", r.Result)
		}
		d.must("set_secure_boot_mode", true)
		if s := st(); !s.SecureBootEnable || s.SecureBootCurrent {
			t.Fatalf("after set_secure_boot_mode(True): enable %v current %v, want true/false until reboot", s.SecureBootEnable, s.SecureBootCurrent)
		}
		d.must("set_host_power", "ON")
		if ev, _ := srv.LastBoot(); !ev.SecureBoot || !st().SecureBootCurrent {
			t.Errorf("secure boot not applied at boot: event %v", ev.SecureBoot)
		}
		if r := d.must("get_secure_boot_mode"); string(r.Result) != "true" {
			t.Errorf("get_secure_boot_mode after reboot = %s, want true", r.Result)
		}
		d.must("clear_secure_boot_keys")
		if s := st(); s.SecureBootKeys != "deleted" || s.SecureBootEnable {
			t.Errorf("after clear_secure_boot_keys: keys %s enable %v", s.SecureBootKeys, s.SecureBootEnable)
		}
		d.must("reset_secure_boot_keys")
		if k := st().SecureBootKeys; k != "default" {
			t.Errorf("after reset_secure_boot_keys: keys %s", k)
		}
		d.must("reset_server")
		if r := d.must("get_secure_boot_mode"); string(r.Result) != "false" {
			t.Errorf("get_secure_boot_mode after clearing keys and reboot = %s, want false", r.Result)
		}
		d.must("set_host_power", "OFF")
	})

	t.Run("virtual media", func(t *testing.T) {
		for _, dev := range []string{"CDROM", "FLOPPY"} {
			url := fmt.Sprintf("%s/images/%s-%s.img", imgURL, srv.Name(), strings.ToLower(dev))
			vm := func() map[string]any {
				var m map[string]any
				if err := json.Unmarshal(d.must("get_vm_status", dev).Result, &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
			if m := vm(); m["IMAGE_INSERTED"] != "NO" || m["DEVICE"] != dev {
				t.Errorf("%s empty: get_vm_status = %v", dev, m)
			}
			d.must("insert_virtual_media", url, dev)
			if m := st().Media[dev]; !m.Inserted || m.URL != url {
				t.Fatalf("%s state after insert: %+v", dev, m)
			}
			if m := vm(); m["IMAGE_INSERTED"] != "YES" || m["IMAGE_URL"] != url || m["WRITE_PROTECT"] != "YES" {
				t.Errorf("%s inserted: get_vm_status = %v", dev, m)
			}
			d.must("set_vm_status", dev, "BOOT_ONCE", "YES")
			if b := st().Media[dev].BootOption; b != "BOOT_ONCE" {
				t.Errorf("%s state boot option %s after set_vm_status(BOOT_ONCE)", dev, b)
			}
			// proliantutils' RIS path reads BootOnNextServerReset at the wrong
			// level (real iLO 4 puts it under Oem.Hp), so Gen9 reports BOOT_ALWAYS.
			if m := vm(); g != sim.Gen9 && m["BOOT_OPTION"] != "BOOT_ONCE" {
				t.Errorf("%s get_vm_status BOOT_OPTION = %v, want BOOT_ONCE", dev, m["BOOT_OPTION"])
			}
			if dev == "CDROM" {
				d.must("set_host_power", "ON")
				ev, _ := srv.LastBoot()
				if ev.BootDevice != "CDROM" || ev.Media["CDROM"] != url {
					t.Errorf("boot with vmedia BOOT_ONCE: device %s media %v", ev.BootDevice, ev.Media)
				}
				if b := st().Media[dev].BootOption; b != "BOOT_ALWAYS" {
					t.Errorf("BOOT_ONCE not consumed by the boot: %s", b)
				}
				d.must("set_host_power", "OFF")
			}
			d.must("eject_virtual_media", dev)
			if m := st().Media[dev]; m.Inserted || m.URL != "" {
				t.Errorf("%s state after eject: %+v", dev, m)
			}
			if m := vm(); m["IMAGE_INSERTED"] != "NO" {
				t.Errorf("%s ejected: get_vm_status = %v", dev, m)
			}
			d.must("eject_virtual_media", dev) // nothing inserted: proliantutils does nothing
		}
		if u := flakyURL(); u != "" {
			r := d.call("insert_virtual_media", u, "CDROM")
			if r.OK {
				t.Errorf("insert of a URL the iLO cannot reach succeeded")
			}
			if st().Media["CDROM"].Inserted {
				t.Errorf("unreachable media was inserted")
			}
		}
	})

	t.Run("essential properties", func(t *testing.T) {
		var got map[string]any
		if err := json.Unmarshal(d.must("get_essential_properties").Result, &got); err != nil {
			t.Fatal(err)
		}
		macs := map[string]any{}
		for i, n := range hw.NICs {
			macs[fmt.Sprintf("Port %d", i+1)] = n.MAC
		}
		want := map[string]any{
			"properties": map[string]any{"memory_mb": float64(hw.MemoryMB), "cpus": float64(hw.TotalThreads()),
				"cpu_arch": "x86_64", "local_gb": float64(hw.LocalGB())},
			"macs": macs,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("get_essential_properties =\n%v\nwant\n%v", got, want)
		}
	})

	t.Run("capabilities", func(t *testing.T) {
		var got map[string]any
		if err := json.Unmarshal(d.must("get_server_capabilities").Result, &got); err != nil {
			t.Fatal(err)
		}
		ilo := map[sim.Generation]string{sim.Gen8: hw.ILOFirmware, sim.Gen9: "iLO 4 v2.61", sim.Gen10: "iLO 5 v2.72"}[g]
		want := map[string]any{
			"server_model": hw.Model, "rom_firmware_version": hw.ROMFirmware, "ilo_firmware_version": ilo,
			"pci_gpu_devices": float64(len(hw.GPUs)),
			"boot_mode_bios":  "true", "boot_mode_uefi": fmt.Sprint(hw.SupportedBootModes != "LEGACY_ONLY"),
		}
		if g != sim.Gen8 {
			want["secure_boot"] = "true"
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("get_server_capabilities[%s] = %v, want %v", k, got[k], v)
			}
		}
	})

	t.Run("licences", func(t *testing.T) {
		var lic map[string]any
		_ = json.Unmarshal(d.must("get_all_licenses").Result, &lic)
		if lic["LICENSE_TYPE"] != st().Licenses[0].Type {
			t.Errorf("get_all_licenses = %v, state %v", lic, st().Licenses)
		}
		if r := d.call("activate_license", "NOT-A-KEY"); r.OK {
			t.Errorf("activate_license accepted a malformed key")
		}
		key := "AAAAA-BBBBB-CCCCC-DDDDD-" + strings.ToUpper(fmt.Sprintf("%05s", g))[:5]
		d.must("activate_license", key)
		if l := st().Licenses[0]; l.Key != key || l.Type != "iLO Advanced" {
			t.Errorf("state licence after activate: %+v", l)
		}
		_ = json.Unmarshal(d.must("get_all_licenses").Result, &lic)
		if lic["LICENSE_KEY"] != key || lic["LICENSE_TYPE"] != "iLO Advanced" {
			t.Errorf("get_all_licenses after activate = %v", lic)
		}
	})

	t.Run("health", func(t *testing.T) {
		var h map[string]any
		_ = json.Unmarshal(d.must("get_host_health_data").Result, &h)
		fans, _ := h["GET_EMBEDDED_HEALTH_DATA"].(map[string]any)["FANS"].(map[string]any)["FAN"].([]any)
		if len(fans) != hw.Fans {
			t.Errorf("health data has %d fans, want %d", len(fans), hw.Fans)
		}
	})

	t.Run("reset_ilo", func(t *testing.T) {
		before := st().ILOResets
		d.must("reset_ilo")
		if n := st().ILOResets; n != before+1 {
			t.Errorf("ILOResets = %d, want %d", n, before+1)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		old := srv.Password()
		if r := d.call("reset_ilo_credential", "short"); r.OK {
			t.Errorf("reset_ilo_credential accepted a 5-character password")
		}
		if srv.Password() != old {
			t.Fatalf("password changed by a refused reset")
		}
		newPw := "N3w-" + srv.Name() + "-pw"
		d.must("reset_ilo_credential", newPw)
		if srv.Password() != newPw {
			t.Fatalf("state password not changed")
		}
		// The client still holds the old password: RIBCL logins now fail.
		if r := d.call("get_all_licenses"); r.OK || r.Error != "IloLoginFailError" {
			t.Errorf("old credentials after reset: %s, want IloLoginFailError", r)
		}
		eqStr("reconnect with the new password", d.must("reconnect", newPw), hw.Model)
		d.must("get_all_licenses")
	})
}
