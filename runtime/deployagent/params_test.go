package deployagent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/deployagent"
)

func TestParseCmdlineAndParams(t *testing.T) {
	raw := deployagent.ParseCmdline(`BOOT_IMAGE=/vmlinuz console=ttyS0 quiet ipa-api-url=http://10.0.2.2:6385,http://10.0.0.9:6385/ ` +
		`ipa-advertise-host=127.0.0.1 ipa-advertise-port=2345 BOOTIF=01-52-54-00-AA-BB-01 ipa-debug=1 ` +
		`root_device="serial=ABC%20D,size=>= 10" ip=10.0.0.5::10.0.0.1:255.255.255.0:node1:eth0:off`)
	p, err := deployagent.ParseParams(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.APIURLs, " "); got != "http://10.0.2.2:6385 http://10.0.0.9:6385" {
		t.Errorf("APIURLs = %q", got)
	}
	if p.BootIF != "52:54:00:aa:bb:01" || p.AdvertiseHost != "127.0.0.1" || p.AdvertisePort != 2345 || p.ListenPort != 9999 || !p.Debug {
		t.Errorf("params = %+v", p)
	}
	if p.RootDevice != "serial=ABC%20D,size=>= 10" {
		t.Errorf("root_device = %q", p.RootDevice)
	}
	st := p.Static
	if st == nil || st.Address.String() != "10.0.0.5" || st.Gateway.String() != "10.0.0.1" || st.Device != "eth0" || st.Hostname != "node1" {
		t.Fatalf("static = %+v", st)
	}
	if ones, _ := st.Mask.Size(); ones != 24 {
		t.Errorf("mask /%d", ones)
	}
	hints, err := deployagent.ParseHintString(p.RootDevice)
	if err != nil || hints["serial"] != "ABC D" || hints["size"] != ">= 10" {
		t.Errorf("hints = %v %v", hints, err)
	}
}

func TestParseParamsErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]string
		want string
	}{
		{map[string]string{}, "ipa-api-url is missing"},
		{map[string]string{"ipa-api-url": "ftp://x"}, "must be an http(s) URL"},
		{map[string]string{"ipa-api-url": "http://x", "BOOTIF": "nope"}, "BOOTIF"},
		{map[string]string{"ipa-api-url": "http://x", "ipa-advertise-port": "70000"}, "ipa-advertise-port"},
		{map[string]string{"ipa-api-url": "http://x", "ip": "10.0.0.300::::"}, "client address"},
		{map[string]string{"ipa-api-url": "http://x", "ip": "10.0.0.3::1.2.3.4:255.0.255.0"}, "netmask"},
		{map[string]string{"ipa-api-url": "http://x", "ip": "10.0.0.3::::h:eth0:dhcp"}, "autoconf"},
	} {
		_, err := deployagent.ParseParams(tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.raw, err, tc.want)
		}
	}
	if p, err := deployagent.ParseParams(map[string]string{"ipa-api-url": "http://x", "ip": "dhcp"}); err != nil || p.Static != nil {
		t.Errorf("ip=dhcp: %+v %v", p.Static, err)
	}
}

func FuzzParams(f *testing.F) {
	f.Add("ipa-api-url=http://10.0.2.2:6385 ip=10.0.0.5::10.0.0.1:24:h:eth0:off:1.1.1.1 BOOTIF=01-52-54-00-aa-bb-01 root_device=\"size=>= 1\"")
	f.Add("a=\"b c\" =x \"\" ip=::::::::::")
	f.Fuzz(func(t *testing.T, cmdline string) {
		raw := deployagent.ParseCmdline(cmdline)
		for k := range raw {
			if k == "" || strings.ContainsAny(k, " \t\n") {
				t.Fatalf("bad key %q", k)
			}
		}
		p, err := deployagent.ParseParams(raw)
		if err == nil && len(p.APIURLs) == 0 {
			t.Fatal("accepted parameters without an API URL")
		}
		if h, err := deployagent.ParseHintString(raw["root_device"]); err == nil {
			_, _ = deployagent.ParseHints(h)
		}
		_ = deployagent.ParseParametersTxt([]byte(cmdline))
	})
}

// LoadParams reads /proc/cmdline and the ir-vfd-dev floppy found among the
// block devices of a fake root; floppy values win.
func TestLoadParamsFromFloppy(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "proc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "proc", "cmdline"), []byte("console=ttyS0 boot_method=vmedia ipa-api-url=http://old:1\n"), 0o644))
	for _, dev := range []string{"sda", "sdb"} {
		must(os.MkdirAll(filepath.Join(root, "sys", "class", "block", dev), 0o755))
	}
	must(os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	// sda: a big disk (never probed), sdb: the floppy
	must(os.WriteFile(filepath.Join(root, "sys", "class", "block", "sda", "size"), []byte("209715200\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "sys", "class", "block", "sdb", "size"), []byte("2880\n"), 0o644))
	must(image.WriteFloppy(context.Background(), filepath.Join(root, "dev", "sdb"), map[string]string{
		"ipa-api-url": "http://10.0.2.2:6385", "ipa-agent-token": "tok", "boot_method": "vmedia"}, image.FloppyOptions{}))
	p, dev, err := deployagent.LoadParams(context.Background(), root, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if dev != filepath.Join(root, "dev", "sdb") || p.APIURLs[0] != "http://10.0.2.2:6385" || p.Token != "tok" || p.Raw["console"] != "ttyS0" {
		t.Errorf("dev %s params %+v", dev, p)
	}
	// without the floppy and without ipa-api-url: a clear error
	must(os.Remove(filepath.Join(root, "dev", "sdb")))
	must(os.WriteFile(filepath.Join(root, "proc", "cmdline"), []byte("console=ttyS0\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := deployagent.LoadParams(ctx, root, 0); err == nil || !strings.Contains(err.Error(), "ir-vfd-dev") {
		t.Errorf("no floppy: %v", err)
	}
}
