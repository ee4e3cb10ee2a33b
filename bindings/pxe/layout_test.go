package pxe

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

const (
	node1 = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	node2 = "2be26c0b-03f2-4d2e-ae87-c02d7f33c456"
	mac1  = "52:54:00:12:34:56"
	mac2  = "52:54:00:AB:CD:EF"
)

// testConfig is a Config over fresh roots in a temp dir.
func testConfig(t *testing.T, ipxe bool) Config {
	t.Helper()
	d := t.TempDir()
	c := Config{
		TFTPRoot: filepath.Join(d, "tftpboot"), HTTPRoot: filepath.Join(d, "httpboot"),
		IPXE: ipxe, TFTPServer: "192.0.2.10", AppendParams: "nofb nomodeset vga=normal",
		BIOSBootfile: "pxelinux.0", UEFIBootfile: "bootx64.efi", IPXEBootfile: "undionly.kpxe", UEFIIPXEBootfile: "snponly.efi",
		HostsDir: filepath.Join(d, "dnsmasq", "hostsdir"), OptsDir: filepath.Join(d, "dnsmasq", "optsdir"),
	}
	if ipxe {
		c.HTTPURL = "http://192.0.2.10:8080/"
	}
	c.MasterPath = filepath.Join(c.Root(), "master_images")
	return c
}

// testFiles writes a kernel and ramdisk to a temp dir.
func testFiles(t *testing.T) (kernel, ramdisk string) {
	t.Helper()
	d := t.TempDir()
	kernel, ramdisk = filepath.Join(d, "vmlinuz"), filepath.Join(d, "initrd")
	if err := os.WriteFile(kernel, []byte("kernel bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ramdisk, []byte("ramdisk bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel, ramdisk
}

// TestPrepareRendersConfig is the golden test of the three config flavours.
func TestPrepareRendersConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		ipxe bool
		mode string
		want string
	}{
		{"bios pxelinux", false, "bios", `default deploy

label deploy
kernel ` + node1 + `/deploy_kernel
append initrd=` + node1 + `/deploy_ramdisk selinux=0 troubleshoot=0 text nofb nomodeset vga=normal ipa-api-url=http://192.0.2.10:6385
ipappend 2

label boot_partition
kernel ` + node1 + `/kernel
append initrd=` + node1 + `/ramdisk root={{ ROOT }} ro text nofb nomodeset vga=normal

label boot_whole_disk
COM32 chain.c32
append mbr:{{ DISK_IDENTIFIER }}
`},
		{"uefi grub", false, "uefi", `set default=deploy
set timeout=5
set hidden_timeout_quiet=false

menuentry "deploy" {
    linux ` + node1 + `/deploy_kernel selinux=0 troubleshoot=0 text nofb nomodeset vga=normal ipa-api-url=http://192.0.2.10:6385
    initrd ` + node1 + `/deploy_ramdisk
}

menuentry "boot_partition" {
    linux ` + node1 + `/kernel root="{{ ROOT }}" ro text nofb nomodeset vga=normal
    initrd ` + node1 + `/ramdisk
}
`},
		{"ipxe", true, "bios", `#!ipxe

goto deploy

:deploy
imgfree
kernel http://192.0.2.10:8080/` + node1 + `/deploy_kernel selinux=0 troubleshoot=0 text nofb nomodeset vga=normal ipa-api-url=http://192.0.2.10:6385 initrd=deploy_ramdisk || goto retry
initrd --name deploy_ramdisk http://192.0.2.10:8080/` + node1 + `/deploy_ramdisk || goto retry
boot

:retry
echo Fetching the deploy kernel or ramdisk failed, retrying in 5 seconds.
sleep 5
goto deploy

:boot_partition
imgfree
kernel http://192.0.2.10:8080/` + node1 + `/kernel root={{ ROOT }} ro text nofb nomodeset vga=normal initrd=ramdisk || goto boot_partition
initrd --name ramdisk http://192.0.2.10:8080/` + node1 + `/ramdisk || goto boot_partition
boot

:boot_whole_disk
sanboot --no-describe --drive 0x80
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, tc.ipxe)
			k, r := testFiles(t)
			p, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1}, Mode: tc.mode, Kernel: k, Ramdisk: r, Params: "ipa-api-url=http://192.0.2.10:6385"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p.Config)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("config:\n%s\nwant:\n%s", got, tc.want)
			}
			for _, f := range []string{"deploy_kernel", "deploy_ramdisk"} {
				b, err := os.ReadFile(filepath.Join(p.Dir, f))
				if err != nil || !strings.Contains(string(b), "bytes") {
					t.Errorf("%s: %q, %v", f, b, err)
				}
			}
		})
	}
}

// TestMACLinks checks the link layout of each flavour and that every link
// reaches the node's config.
func TestMACLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		ipxe bool
		mode string
		want []string
	}{
		{"bios", false, "bios", []string{"pxelinux.cfg/01-52-54-00-12-34-56", "pxelinux.cfg/01-52-54-00-ab-cd-ef"}},
		{"uefi", false, "uefi", []string{"52:54:00:12:34:56.conf", "52:54:00:ab:cd:ef.conf", "grub.cfg-01-52-54-00-12-34-56", "grub.cfg-01-52-54-00-ab-cd-ef"}},
		{"ipxe", true, "bios", []string{"pxelinux.cfg/52-54-00-12-34-56", "pxelinux.cfg/52-54-00-ab-cd-ef", "pxelinux.cfg/525400123456", "pxelinux.cfg/525400abcdef"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, tc.ipxe)
			k, r := testFiles(t)
			p, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1, mac2}, Mode: tc.mode, Kernel: k, Ramdisk: r})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range p.Links {
				rel, _ := filepath.Rel(c.Root(), l)
				got = append(got, filepath.ToSlash(rel))
				target, err := filepath.EvalSymlinks(l)
				if err != nil {
					t.Fatalf("link %s: %v", rel, err)
				}
				want, _ := filepath.EvalSymlinks(p.Config)
				if target != want {
					t.Errorf("link %s -> %s, want the node config", rel, target)
				}
				if lt, _ := os.Readlink(l); filepath.IsAbs(lt) {
					t.Errorf("link %s is absolute (%s): the root must stay movable", rel, lt)
				}
				// The servers' policy serves the config through the link.
				if _, err := (Tree{Root: c.Root()}).Resolve(filepath.ToSlash(rel)); err != nil {
					t.Errorf("Resolve(%s): %v", rel, err)
				}
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("links %v, want %v", got, tc.want)
			}
		})
	}
}

// walk lists every path under root (relative, slash-separated).
func walk(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestCleanLeavesNothing prepares two nodes sharing a kernel, cleans one
// (its files, links and snippets go, the other's stay and still resolve),
// then the other (nothing of either is left), then cleans again.
func TestCleanLeavesNothing(t *testing.T) {
	for _, ipxe := range []bool{false, true} {
		c := testConfig(t, ipxe)
		k, r := testFiles(t)
		for _, n := range []struct{ node, mac, mode string }{{node1, mac1, "bios"}, {node2, mac2, "uefi"}} {
			if _, err := c.Prepare(context.Background(), Boot{Node: n.node, MACs: []string{n.mac}, Mode: n.mode, Kernel: k, Ramdisk: r, InstanceKernel: k, InstanceRamdisk: r}); err != nil {
				t.Fatal(err)
			}
		}
		// Hard links into one master entry per distinct content.
		masters := walk(t, c.MasterPath)
		if len(masters) != 2 {
			t.Errorf("master cache %v: want one entry each for the kernel and the ramdisk", masters)
		}
		if n := linkCount(filepath.Join(c.NodeDir(node1), "deploy_kernel")); n != 5 {
			t.Errorf("deploy_kernel has %d links, want 5 (master, 2 nodes x deploy_kernel+kernel)", n)
		}
		before := walk(t, c.Root())
		if err := c.Clean(node1); err != nil {
			t.Fatal(err)
		}
		for _, p := range walk(t, c.Root()) {
			if strings.Contains(p, node1) || strings.Contains(p, "12-34-56") || strings.Contains(p, "123456") || strings.Contains(p, "12:34:56") {
				t.Errorf("after Clean(node1) %s is left", p)
			}
		}
		for _, d := range []string{c.HostsDir, c.OptsDir} {
			if _, err := os.Stat(filepath.Join(d, node1)); !os.IsNotExist(err) {
				t.Errorf("dnsmasq snippet of node1 left in %s", d)
			}
			if _, err := os.Stat(filepath.Join(d, node2)); err != nil {
				t.Errorf("dnsmasq snippet of node2 gone from %s", d)
			}
		}
		if b, err := os.ReadFile(filepath.Join(c.NodeDir(node2), "deploy_kernel")); err != nil || string(b) != "kernel bytes" {
			t.Errorf("node2's kernel after cleaning node1: %q %v", b, err)
		}
		if err := c.Clean(node2); err != nil {
			t.Fatal(err)
		}
		if left := walk(t, c.Root()); len(left) != 0 {
			t.Errorf("ipxe=%v: left after cleaning both (had %v): %v", ipxe, before, left)
		}
		for _, d := range []string{c.HostsDir, c.OptsDir} {
			if left := walk(t, d); len(left) != 0 {
				t.Errorf("left in %s: %v", d, left)
			}
		}
		if err := c.Clean(node2); err != nil {
			t.Errorf("second Clean: %v", err)
		}
	}
}

// TestSwitch covers Ironic's switch_pxe_config and the local-boot removal.
func TestSwitch(t *testing.T) {
	c := testConfig(t, false)
	k, r := testFiles(t)
	p, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1}, Mode: "bios", Kernel: k, Ramdisk: r, InstanceKernel: k, InstanceRamdisk: r})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Switch(node1, LabelBootPartition, "0a2c3a6f-6e4b-4d1d-9d19-3a0b7f0a1b2c"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p.Config)
	if !strings.HasPrefix(string(b), "default boot_partition\n") || !strings.Contains(string(b), "root=UUID=0a2c3a6f-6e4b-4d1d-9d19-3a0b7f0a1b2c ro") || strings.Contains(string(b), RootPlaceholder) {
		t.Errorf("after switch to boot_partition:\n%s", b)
	}
	if err := c.Switch(node1, LabelBootWholeDisk, "0x1234abcd"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p.Config)
	if !strings.HasPrefix(string(b), "default boot_whole_disk\n") || !strings.Contains(string(b), "append mbr:0x1234abcd") {
		t.Errorf("after switch to boot_whole_disk:\n%s", b)
	}
	if err := c.Switch(node1, "local", ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{p.Config}, p.Links...) {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("local boot left %s", f)
		}
	}
	// UEFI whole-disk netboot is the §5.3 conflict.
	c2 := testConfig(t, false)
	if _, err := c2.Prepare(context.Background(), Boot{Node: node2, MACs: []string{mac2}, Mode: "uefi", Kernel: k, Ramdisk: r}); err != nil {
		t.Fatal(err)
	}
	if err := c2.Switch(node2, LabelBootWholeDisk, "0x1"); err == nil || !strings.Contains(err.Error(), "Conflict: Whole disk image") {
		t.Errorf("uefi whole disk netboot: %v", err)
	}
}

// TestPrepareBadInput: clear errors naming the field, nothing left behind.
func TestPrepareBadInput(t *testing.T) {
	k, r := testFiles(t)
	for _, tc := range []struct {
		name string
		b    Boot
		want string
	}{
		{"no ports", Boot{Node: node1, Kernel: k, Ramdisk: r}, "has no ports"},
		{"bad mac", Boot{Node: node1, MACs: []string{"nope"}, Kernel: k, Ramdisk: r}, "ports[].address"},
		{"no kernel", Boot{Node: node1, MACs: []string{mac1}, Ramdisk: r}, "deploy_kernel"},
		{"bad mode", Boot{Node: node1, MACs: []string{mac1}, Mode: "efi", Kernel: k, Ramdisk: r}, "bios or uefi"},
		{"missing ramdisk file", Boot{Node: node1, MACs: []string{mac1}, Kernel: k, Ramdisk: "/nonexistent/initrd"}, "deploy_ramdisk from /nonexistent/initrd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, false)
			_, err := c.Prepare(context.Background(), tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
			if left := walk(t, c.Root()); len(left) != 0 {
				t.Errorf("a failed Prepare left %v", left)
			}
		})
	}
}

// TestDnsmasqAcceptsSnippets has Debian's dnsmasq load the host and
// option files (as --dhcp-hostsfile/--dhcp-optsfile and through the
// --dhcp-hostsdir/--dhcp-optsdir directories): it reports every line it
// cannot parse ("bad dhcp-option at line N").
func TestDnsmasqAcceptsSnippets(t *testing.T) {
	testenv.RequireTools(t, "dnsmasq")
	if os.Geteuid() != 0 {
		t.Skip("dnsmasq needs root to bind the DHCP port")
	}
	for _, ipxe := range []bool{false, true} {
		c := testConfig(t, ipxe)
		k, r := testFiles(t)
		p, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1, mac2}, Mode: "uefi", Kernel: k, Ramdisk: r})
		if err != nil {
			t.Fatal(err)
		}
		hosts, _ := os.ReadFile(p.Hosts)
		opts, _ := os.ReadFile(p.Opts)
		wantHosts := mac1 + ",set:lightsout-" + node1 + "\n52:54:00:ab:cd:ef,set:lightsout-" + node1 + "\n"
		if string(hosts) != wantHosts {
			t.Errorf("hosts file %q, want %q", hosts, wantHosts)
		}
		wantBoot := "option:bootfile-name,bootx64.efi"
		if ipxe {
			wantBoot = "tag:ipxe,option:bootfile-name,http://192.0.2.10:8080/boot.ipxe"
		}
		if !strings.Contains(string(opts), wantBoot) || !strings.Contains(string(opts), "option:tftp-server,192.0.2.10") {
			t.Errorf("opts file %q lacks %q or the TFTP server", opts, wantBoot)
		}
		log := dnsmasqLoad(t, "--dhcp-hostsfile="+p.Hosts, "--dhcp-optsfile="+p.Opts)
		if strings.Contains(log, "bad ") || !strings.Contains(log, "read "+p.Hosts) {
			t.Errorf("dnsmasq on the snippet files:\n%s", log)
		}
	}
	// The check can fail: a bad option line is reported.
	bad := filepath.Join(t.TempDir(), "opts")
	os.WriteFile(bad, []byte("tag:x,option:no-such-option,1\n"), 0o644)
	if log := dnsmasqLoad(t, "--dhcp-optsfile="+bad); !strings.Contains(log, "bad dhcp-option at line 1") {
		t.Errorf("dnsmasq did not report a bad option line:\n%s", log)
	}
}

// dnsmasqLoad starts dnsmasq (DHCP on lo only, no DNS) with extra
// arguments, collects its log until it has read its last file, and stops it.
func dnsmasqLoad(t *testing.T, args ...string) string {
	t.Helper()
	last := args[len(args)-1]
	last = last[strings.Index(last, "=")+1:]
	cmd := exec.Command("dnsmasq", append([]string{"--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=lo",
		"--bind-interfaces", "--dhcp-range=127.0.0.2,127.0.0.10", "--pid-file=", "--dhcp-leasefile=" + filepath.Join(t.TempDir(), "leases")}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	done := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "read "+last) {
				break
			}
		}
		done <- b.String()
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("dnsmasq did not report reading its files within 20s")
	}
	return ""
}

// TestGrubScriptCheck has GRUB's own parser (grub-script-check, Debian's
// grub-common) check the UEFI config as written, after each switch, and
// the shared master grub.cfg; a broken script is reported.
func TestGrubScriptCheck(t *testing.T) {
	testenv.RequireTools(t, "grub-script-check")
	c := testConfig(t, false)
	k, r := testFiles(t)
	p, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1}, Mode: "uefi", Kernel: k, Ramdisk: r,
		InstanceKernel: k, InstanceRamdisk: r, Params: "ipa-api-url=http://192.0.2.10:6385 ipa-debug=1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Setup(); err != nil {
		t.Fatal(err)
	}
	check := func(what, path string) {
		t.Helper()
		if out, err := exec.Command("grub-script-check", path).CombinedOutput(); err != nil {
			t.Errorf("%s: grub-script-check: %v\n%s", what, err, out)
		}
	}
	check("deploy", p.Config)
	if err := c.Switch(node1, LabelBootPartition, "0a2c3a6f-6e4b-4d1d-9d19-3a0b7f0a1b2c"); err != nil {
		t.Fatal(err)
	}
	check("boot_partition", p.Config)
	if b, _ := os.ReadFile(p.Config); !strings.HasPrefix(string(b), "set default=boot_partition\n") ||
		!strings.Contains(string(b), `root="UUID=0a2c3a6f-6e4b-4d1d-9d19-3a0b7f0a1b2c" ro`) {
		t.Errorf("after the switch:\n%s", b)
	}
	check("master", filepath.Join(c.TFTPRoot, "grub", "grub.cfg"))
	bad := filepath.Join(t.TempDir(), "bad.cfg")
	os.WriteFile(bad, []byte("menuentry \"x\" {\n  linux /k\n"), 0o644)
	if err := exec.Command("grub-script-check", bad).Run(); err == nil {
		t.Error("grub-script-check accepted an unterminated menuentry: the check proves nothing")
	}
}

// TestPrepareAgainReplacesLinks: a second prepare with another port and
// boot mode leaves no link of the first.
func TestPrepareAgainReplacesLinks(t *testing.T) {
	c := testConfig(t, false)
	k, r := testFiles(t)
	if _, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac1}, Mode: "bios", Kernel: k, Ramdisk: r}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{mac2}, Mode: "uefi", Kernel: k, Ramdisk: r})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range walk(t, c.Root()) {
		if strings.Contains(f, "12-34-56") || strings.Contains(f, "12:34:56") {
			t.Errorf("stale link %s", f)
		}
	}
	if len(p.Links) != 2 {
		t.Errorf("links %v", p.Links)
	}
}
