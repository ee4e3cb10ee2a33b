package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// client is a Redfish client of the simulated iLO srv.
func client(t *testing.T, srv *sim.Server) *Client {
	t.Helper()
	tr, err := iloapi.NewTransport(iloapi.Options{Host: "127.0.0.1", Port: srv.Port(), Username: srv.Username(), Password: srv.Password(),
		Timeout: 5 * time.Second, Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	c := New(tr)
	c.ResetSettle, c.ResetPollInterval = time.Millisecond, 5*time.Millisecond
	return c
}

func lastMatching(log []string, prefix string) string {
	for i := len(log) - 1; i >= 0; i-- {
		if strings.HasPrefix(log[i], prefix) {
			return log[i]
		}
	}
	return ""
}

func TestVirtualMediaPerILO(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		gen        int
		insertWire string // prefix of the request that inserted
		body       string
	}{
		// iLO 4 has no standard action; it offers the HP OEM one.
		{9, "POST /redfish/v1/Managers/1/VirtualMedia/2/Actions/Oem/Hp/HpiLOVirtualMedia.InsertVirtualMedia/", `{"Image":"IMG"}`},
		{10, "POST /redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia/", `{"Image":"IMG"}`},
	}
	img := simtest.ImageServer(t) + "/a.iso"
	for _, tc := range tests {
		_, srv := simtest.ILO(t, tc.gen, simtest.WithRequestLog())
		c := client(t, srv)
		if err := c.EjectVirtualMedia(ctx, "CDROM"); err != nil {
			t.Fatalf("gen%d eject empty: %v", tc.gen, err)
		}
		if err := c.InsertVirtualMedia(ctx, img, "cdrom"); err != nil {
			t.Fatalf("gen%d insert: %v", tc.gen, err)
		}
		if got := lastMatching(srv.RequestLog(), tc.insertWire); strings.TrimSpace(strings.TrimPrefix(got, tc.insertWire)) != strings.ReplaceAll(tc.body, "IMG", img) {
			t.Fatalf("gen%d insert request %q, want body %s; log:\n%s", tc.gen, got, tc.body, strings.Join(srv.RequestLog(), "\n"))
		}
		st, err := c.GetVMStatus(ctx, "CDROM")
		if err != nil || !st.Inserted() || st.ImageURL != img {
			t.Fatalf("gen%d status %+v %v", tc.gen, st, err)
		}
		if err := c.SetVMStatus(ctx, "CDROM", "BOOT_ONCE", "YES"); err != nil {
			t.Fatal(err)
		}
		key := map[int]string{9: "Hp", 10: "Hpe"}[tc.gen]
		if got := lastMatching(srv.RequestLog(), "PATCH /redfish/v1/Managers/1/VirtualMedia/2/"); !strings.Contains(got, `{"Oem":{"`+key+`":{"BootOnNextServerReset":true}}}`) {
			t.Fatalf("gen%d set_vm_status sent %q", tc.gen, got)
		}
		if st, _ := c.GetVMStatus(ctx, "CDROM"); st.BootOption != "BOOT_ONCE" {
			t.Fatalf("boot option %q", st.BootOption)
		}
		if err := c.EjectVirtualMedia(ctx, "CDROM"); err != nil || srv.State().Media["CDROM"].Inserted {
			t.Fatalf("gen%d eject: %v", tc.gen, err)
		}
		if srv.Sessions() != 1 {
			t.Fatalf("gen%d: %d sessions open, want the one shared session", tc.gen, srv.Sessions())
		}
		c.Close(ctx)
		if srv.Sessions() != 0 {
			t.Fatalf("gen%d: %d sessions left after Close", tc.gen, srv.Sessions())
		}
	}
}

func TestBootOverrideIsMinimal(t *testing.T) {
	_, srv := simtest.ILO(t, 10, simtest.WithRequestLog())
	c := client(t, srv)
	ctx := context.Background()
	if err := c.SetOneTimeBoot(ctx, "CDROM"); err != nil {
		t.Fatal(err)
	}
	got := lastMatching(srv.RequestLog(), "PATCH /redfish/v1/Systems/1/")
	if strings.Contains(got, "BootSourceOverrideMode") || !strings.Contains(got, `"BootSourceOverrideTarget":"Cd"`) {
		t.Fatalf("PATCH %q", got)
	}
	if d, err := c.GetOneTimeBoot(ctx); err != nil || d != "CDROM" {
		t.Fatalf("%q %v", d, err)
	}
	if err := c.UpdatePersistentBoot(ctx, []string{"NETWORK"}); err != nil {
		t.Fatal(err)
	}
	if d, err := c.GetPersistentBootDevice(ctx); err != nil || d != "NETWORK" {
		t.Fatalf("%q %v", d, err)
	}
	if err := c.SetOneTimeBoot(ctx, "Normal"); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.GetOneTimeBoot(ctx); d != "Normal" {
		t.Fatalf("one time %q", d)
	}
}

func TestOperations(t *testing.T) {
	_, srv := simtest.ILO(t, 10, func(o *sim.Options) {
		o.Hardware = func(_ string, _ sim.Generation, _ int, hw *sim.Hardware) {
			hw.GPUs = []sim.GPU{{Vendor: "NVIDIA", Name: "Tesla T4"}}
			hw.SupportedBootModes = "LEGACY_UEFI"
		}
	})
	hw := srv.Hardware()
	c := client(t, srv)
	ctx := context.Background()
	if err := c.PressPwrBtn(ctx); err != nil || srv.State().Power != "ON" {
		t.Fatalf("press: %v", err)
	}
	if err := c.SetHostPower(ctx, "ON"); err != nil { // already on: no request that iLO would refuse
		t.Fatal(err)
	}
	if err := c.ResetServer(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := c.GetEssentialProperties(ctx)
	threads, macs := 0, 0
	for _, cpu := range hw.CPUs {
		threads += cpu.Threads
	}
	for _, n := range hw.NICs {
		if n.Embedded {
			macs++
		}
	}
	if err != nil || p.MemoryMB != hw.MemoryMB || p.CPUs != threads || p.CPUArch != "x86_64" || len(p.MACs) == 0 || len(p.MACs) > len(hw.NICs) {
		t.Fatalf("essential %+v %v (hardware %+v)", p, err, hw)
	}
	caps, err := c.GetServerCapabilities(ctx)
	if err != nil || caps["pci_gpu_devices"] != "1" || caps["secure_boot"] != "true" || !strings.Contains(caps["ilo_firmware_version"], "2.72") ||
		caps["rom_firmware_version"] != hw.ROMFirmware || caps["boot_mode_uefi"] != "true" || caps["boot_mode_bios"] != "true" {
		t.Fatalf("caps %v %v", caps, err)
	}
	if err := c.ResetSecureBootKeys(ctx); err != nil {
		t.Fatal(err)
	}
	lic, err := c.GetAllLicenses(ctx)
	if want := srv.State().Licenses; err != nil || len(lic) != len(want) || lic[0].Type != want[0].Type {
		t.Fatalf("licences %+v %v, want %+v", lic, err, want)
	}
	h, err := c.GetHostHealthData(ctx)
	if err != nil || len(h.Temperatures) == 0 || !strings.HasSuffix(h.Temperatures[0].Reading, " Celsius") || h.PowerReading != fmt.Sprintf("%d Watts", hw.PowerWatts) {
		t.Fatalf("health %+v %v", h, err)
	}
	if err := c.ResetILO(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetILOCredential(ctx, "n3w-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetHostPowerStatus(ctx); iloapi.KindOf(err) != iloapi.KindLoginFailed {
		t.Fatalf("old password after credential reset: %v", err)
	}
	if srv.Password() != "n3w-secret" {
		t.Fatal("password not changed on the iLO")
	}
	if srv.Sessions() != 0 {
		t.Fatalf("%d sessions left", srv.Sessions())
	}
}

func TestSecureBootNeedsUEFI(t *testing.T) {
	_, srv := simtest.ILO(t, 10)
	srv.Update(func(st *sim.State) { st.BootMode, st.PendingBootMode = "LEGACY", "LEGACY" })
	c := client(t, srv)
	if err := c.SetSecureBootMode(context.Background(), true); iloapi.KindOf(err) != iloapi.KindNotSupported {
		t.Fatalf("want not_supported, got %v", err)
	}
}

func TestErrorInfo(t *testing.T) {
	tests := []struct{ body, id, msg string }{
		{`{"error":{"code":"iLO.0.10.ExtendedInfo","message":"See","@Message.ExtendedInfo":[{"MessageId":"iLO.2.15.InvalidOperationForSystemState"}]}}`,
			"iLO.2.15.InvalidOperationForSystemState", "iLO.2.15.InvalidOperationForSystemState"},
		{`{"Type":"ExtendedError.1.0.0","Messages":[{"MessageID":"Base.0.0.FakeFailureMessage"}]}`, "Base.0.0.FakeFailureMessage", "Base.0.0.FakeFailureMessage"},
		{`<html>oops</html>`, "", "<html>oops</html>"},
		{`{"error":{"code":"Base.1.0.GeneralError","message":"boom"}}`, "Base.1.0.GeneralError", "boom"},
	}
	for _, tc := range tests {
		id, msg := errorInfo([]byte(tc.body))
		if id != tc.id || msg != tc.msg {
			t.Errorf("%s: %q %q", tc.body, id, msg)
		}
	}
}

func TestDecoders(t *testing.T) {
	var vm map[string]any
	_ = json.Unmarshal([]byte(`{"MediaTypes":["CD","DVD"],"Image":"http://x/a.iso","Inserted":true,"ConnectedVia":"URI",
"Oem":{"Hp":{"BootOnNextServerReset":true,"Actions":{"#HpiLOVirtualMedia.EjectVirtualMedia":{"target":"/e"}}}}}`), &vm)
	st := DecodeVirtualMedia(vm)
	if !st.Serves("CDROM") || st.Serves("FLOPPY") || !st.Inserted || st.OemKey != "Hp" || st.OemEjectTarget != "/e" || !st.BootOnNextReset {
		t.Fatalf("%+v", st)
	}
	if s := VMStatusOf("CDROM", st); s.BootOption != "BOOT_ONCE" || s.ImageInserted != "YES" || s.VMApplet != "CONNECTED" {
		t.Fatalf("%+v", s)
	}
	for cls, want := range map[string]string{`{}`: "legacy bios only", `{"Oem":{"Hpe":{"Bios":{"UefiClass":2}}}}`: "legacy bios and uefi",
		`{"Oem":{"Hp":{"Bios":{"UefiClass":3}}}}`: "uefi only"} {
		var m map[string]any
		_ = json.Unmarshal([]byte(cls), &m)
		if got := SupportedBootMode(m); got != want {
			t.Errorf("%s: %q", cls, got)
		}
	}
	var gpu map[string]any
	_ = json.Unmarshal([]byte(`{"ClassCode":3,"SubclassCode":128}`), &gpu)
	if !IsGPU(gpu) {
		t.Error("GPU not recognised")
	}
	var links map[string]any
	_ = json.Unmarshal([]byte(`{"Oem":{"Hpe":{"Links":{"PCIDevices":[{"@odata.id":"/p"}]}}},"links":{"Member":[{"href":"/rest/v1/x"}]}}`), &links)
	if oemLink(links, "PCIDevices") != "/p" || len(members(links)) != 1 {
		t.Error("link forms")
	}
}

func FuzzDecoders(f *testing.F) {
	f.Add([]byte(`{"MediaTypes":["CD"],"Image":"u","Inserted":true,"Oem":{"Hpe":{"BootOnNextServerReset":true}}}`))
	f.Add([]byte(`{"Oem":{"Hp":{"Bios":{"UefiClass":"2"},"Links":{"BIOS":{"href":"/b"}}}},"Actions":{"#ComputerSystem.Reset":{"target":"/r","ResetType@Redfish.AllowableValues":["On"]}}}`))
	f.Add([]byte(`{"error":{"@Message.ExtendedInfo":[{"MessageId":"iLO.2.15.UnableToModifyDuringSystemPOST"}]}}`))
	f.Add([]byte(`{"Members":[{"@odata.id":"/a"},{}],"links":{"Member":[{"href":3}]}}`))
	f.Add([]byte(`{"License":"iLO Advanced","LicenseKey":"K","ClassCode":3,"SubclassCode":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = errorInfo(b)
		m, err := decodeObject(b)
		if err != nil {
			return
		}
		st := DecodeVirtualMedia(m)
		_ = VMStatusOf("CDROM", st)
		_ = SupportedBootMode(m)
		_ = IsGPU(m)
		_ = DecodeLicense(m)
		_ = members(m)
		_ = oemLink(m, "BIOS")
		_ = oemAction(m, "ComputerSystemExt.PowerButton")
		_ = allowable(obj(m, "Actions"), "ComputerSystem.Reset", "ResetType")
		_ = biosSettingsURI(m)
		_ = biosAttr(m, "BootMode")
		_ = redactJSON(b)
	})
}
