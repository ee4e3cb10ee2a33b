package pxe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrInvalid marks errors in what the caller asked for (ports, boot
// mode, files, a switch target), as opposed to file system failures.
var ErrInvalid = errors.New("invalid PXE request")

// inputError is an error of the caller's input; it matches ErrInvalid.
type inputError string

func (e inputError) Error() string        { return string(e) }
func (e inputError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error { return inputError(fmt.Sprintf(format, args...)) }

// Boot is what Prepare writes for one node.
type Boot struct {
	Node string   // node UUID
	MACs []string // the node's port addresses (at least one)
	Mode string   // "bios" or "uefi"
	// Kernel and Ramdisk are the deploy kernel and ramdisk (local files).
	Kernel, Ramdisk string
	// InstanceKernel and InstanceRamdisk (optional) are a partition image's
	// kernel and ramdisk, for a netboot after the deploy.
	InstanceKernel, InstanceRamdisk string
	// Params are the deploy's own kernel parameters (ipa-api-url=..., ...).
	Params string
}

// Prepared lists what Prepare wrote.
type Prepared struct {
	Dir    string   // <root>/<uuid>
	Config string   // <root>/<uuid>/config
	Links  []string // the MAC-named links
	Hosts  string   // the dnsmasq hosts file ("" when no hostsdir)
	Opts   string   // the dnsmasq options file
	// Bootfile is the DHCP boot file name the node's firmware is given.
	Bootfile string
}

// normMAC returns mac as lower-case aa:bb:cc:dd:ee:ff, or an error naming it.
func normMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil || len(hw) != 6 {
		return "", invalid("port address %q is not a MAC address (aa:bb:cc:dd:ee:ff): fix the node's ports[].address", mac)
	}
	return hw.String(), nil
}

// linkNames returns the MAC-named links of mac (aa:bb:..., lower case),
// relative to the root (Ironic §5.3): pxelinux.cfg/01-aa-bb-... (BIOS);
// grub.cfg-01-aa-bb-... and aa:bb:....conf (UEFI, GRUB); with iPXE
// pxelinux.cfg/aa-bb-... and the legacy pxelinux.cfg/aabbcc....
func (c Config) linkNames(mode, mac string) []string {
	hyp := strings.ReplaceAll(mac, ":", "-")
	switch {
	case c.IPXE:
		return []string{"pxelinux.cfg/" + hyp, "pxelinux.cfg/" + strings.ReplaceAll(mac, ":", "")}
	case mode == "uefi":
		return []string{"grub.cfg-01-" + hyp, mac + ".conf"}
	}
	return []string{"pxelinux.cfg/01-" + hyp}
}

// fileRef is how a config names a file of the node directory: a path
// relative to the TFTP root, or a URL under [deploy] http_url with iPXE.
func (c Config) fileRef(node, name string) (string, error) {
	if !c.IPXE {
		return node + "/" + name, nil
	}
	if c.HTTPURL == "" {
		return "", invalid("[pxe] ipxe_enabled needs [deploy] http_url (the URL nodes reach [deploy] http_root at)")
	}
	u, err := url.Parse(c.HTTPURL)
	if err != nil {
		return "", fmt.Errorf("[deploy] http_url %q: %w", c.HTTPURL, err)
	}
	u.Path = path.Join("/", u.Path, node, name)
	return u.String(), nil
}

// Prepare writes the node's boot files (see the package doc). On any error
// what it wrote is removed again (Clean), so nothing is left half-done.
func (c Config) Prepare(ctx context.Context, b Boot) (*Prepared, error) {
	if !uuidRE.MatchString(b.Node) {
		return nil, invalid("node %q: not a UUID", b.Node)
	}
	switch b.Mode {
	case "bios", "uefi":
	case "":
		b.Mode = "bios"
	default:
		return nil, invalid("boot mode %q: want bios or uefi", b.Mode)
	}
	if len(b.MACs) == 0 {
		return nil, invalid("node %s has no ports: PXE needs the MAC of the port it boots from (add ports[].address)", b.Node)
	}
	macs := make([]string, 0, len(b.MACs))
	for _, m := range b.MACs {
		n, err := normMAC(m)
		if err != nil {
			return nil, err
		}
		macs = append(macs, n)
	}
	if b.Kernel == "" || b.Ramdisk == "" {
		return nil, invalid("the deploy kernel and ramdisk are required (driver_info deploy_kernel and deploy_ramdisk)")
	}
	if (b.InstanceKernel == "") != (b.InstanceRamdisk == "") {
		return nil, invalid("the instance kernel and ramdisk go together: give both or neither")
	}
	p, err := c.prepare(ctx, b, macs)
	if err != nil {
		if cerr := c.Clean(b.Node); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	return p, nil
}

func (c Config) prepare(ctx context.Context, b Boot, macs []string) (*Prepared, error) {
	// A second prepare (other ports, other boot mode) leaves no stale link.
	if err := c.removeLinks(b.Node); err != nil {
		return nil, err
	}
	dir := c.NodeDir(b.Node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("node boot directory: %w (check [pxe] tftp_root / [deploy] http_root)", err)
	}
	files := [][2]string{{"deploy_kernel", b.Kernel}, {"deploy_ramdisk", b.Ramdisk}}
	if b.InstanceKernel != "" {
		files = append(files, [2]string{"kernel", b.InstanceKernel}, [2]string{"ramdisk", b.InstanceRamdisk})
	}
	for _, f := range files {
		if err := c.cacheInto(ctx, f[1], filepath.Join(dir, f[0])); err != nil {
			return nil, fmt.Errorf("%s from %s: %w", f[0], f[1], err)
		}
	}
	d := templateData{NodeUUID: b.Node, AppendParams: c.AppendParams, Params: b.Params}
	var err error
	if d.DeployKernel, err = c.fileRef(b.Node, "deploy_kernel"); err != nil {
		return nil, err
	}
	d.DeployRamdisk, _ = c.fileRef(b.Node, "deploy_ramdisk")
	d.Kernel, _ = c.fileRef(b.Node, "kernel")
	d.Ramdisk, _ = c.fileRef(b.Node, "ramdisk")
	cfg, err := c.render(b.Mode, d)
	if err != nil {
		return nil, err
	}
	out := &Prepared{Dir: dir, Config: filepath.Join(dir, "config")}
	if err := writeAtomic(out.Config, cfg, 0o644); err != nil {
		return nil, err
	}
	if err := c.writeMode(b.Node, b.Mode); err != nil {
		return nil, err
	}
	for _, mac := range macs {
		for _, l := range c.linkNames(b.Mode, mac) {
			abs := filepath.Join(c.root(), filepath.FromSlash(l))
			target, _ := filepath.Rel(filepath.Dir(abs), out.Config)
			if err := symlinkAtomic(target, abs); err != nil {
				return nil, err
			}
			out.Links = append(out.Links, abs)
		}
	}
	out.Bootfile = c.bootfile(b.Mode)
	if out.Hosts, out.Opts, err = c.writeDHCP(b.Node, b.Mode, macs); err != nil {
		return nil, err
	}
	return out, nil
}

// modeFile records the boot mode Prepare wrote (Switch needs it).
const modeFile = ".boot_mode"

func (c Config) writeMode(node, mode string) error {
	return writeAtomic(filepath.Join(c.NodeDir(node), modeFile), []byte(mode+"\n"), 0o644)
}

// bootfile is the DHCP boot file for mode (Ironic's pxe_bootfile_name and
// friends; with iPXE the one that loads iPXE).
func (c Config) bootfile(mode string) string {
	switch {
	case c.IPXE && mode == "uefi":
		return c.UEFIIPXEBootfile
	case c.IPXE:
		return c.IPXEBootfile
	case mode == "uefi":
		return c.UEFIBootfile
	}
	return c.BIOSBootfile
}

// dhcpTag is the dnsmasq tag of a node's hosts and options.
func dhcpTag(node string) string { return "lightsout-" + strings.ToLower(node) }

// writeDHCP writes the node's dnsmasq --dhcp-hostsdir file (one
// "MAC,set:<tag>" line per port) and --dhcp-optsdir file (the boot file,
// TFTP server; with iPXE the boot.ipxe URL for clients that are iPXE
// already), as Ironic's dnsmasq DHCP provider does.
func (c Config) writeDHCP(node, mode string, macs []string) (string, string, error) {
	if c.HostsDir == "" || c.OptsDir == "" {
		return "", "", nil
	}
	tag := dhcpTag(node)
	var hosts strings.Builder
	for _, m := range macs {
		fmt.Fprintf(&hosts, "%s,set:%s\n", m, tag)
	}
	var opts strings.Builder
	if c.IPXE {
		fmt.Fprintf(&opts, "tag:%s,tag:!ipxe,option:bootfile-name,%s\n", tag, c.bootfile(mode))
		u, err := url.JoinPath(c.HTTPURL, "boot.ipxe")
		if err != nil || c.HTTPURL == "" {
			return "", "", invalid("[pxe] ipxe_enabled needs [deploy] http_url (the URL nodes reach [deploy] http_root at)")
		}
		fmt.Fprintf(&opts, "tag:%s,tag:ipxe,option:bootfile-name,%s\n", tag, u)
	} else {
		fmt.Fprintf(&opts, "tag:%s,option:bootfile-name,%s\n", tag, c.bootfile(mode))
	}
	if c.TFTPServer != "" {
		fmt.Fprintf(&opts, "tag:%s,option:tftp-server,%s\n", tag, c.TFTPServer)
		fmt.Fprintf(&opts, "tag:%s,option:server-ip-address,%s\n", tag, c.TFTPServer)
	}
	hf, of := filepath.Join(c.HostsDir, node), filepath.Join(c.OptsDir, node)
	for _, f := range [][2]string{{hf, hosts.String()}, {of, opts.String()}} {
		if err := os.MkdirAll(filepath.Dir(f[0]), 0o755); err != nil {
			return "", "", fmt.Errorf("dnsmasq snippet directory: %w (check [dnsmasq] dhcp_hostsdir and dhcp_optsdir)", err)
		}
		if err := writeAtomic(f[0], []byte(f[1]), 0o644); err != nil {
			return "", "", err
		}
	}
	return hf, of, nil
}

// Switch changes what the node's config boots after the deploy:
// "local" removes the config and its links (the node boots its disk);
// "boot_partition" netboots the instance kernel with root=<value>
// (UUID=...); "boot_whole_disk" chain-loads the disk whose MBR identifier
// is value (pxelinux only: a UEFI whole-disk image cannot be netbooted).
func (c Config) Switch(node, label, value string) error {
	if !uuidRE.MatchString(node) {
		return invalid("node %q: not a UUID", node)
	}
	if label == "local" {
		return c.removeConfig(node)
	}
	cfgPath := filepath.Join(c.NodeDir(node), "config")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("node %s has no PXE config to switch (run pxe.prepare first): %w", node, err)
	}
	mode := "bios"
	if m, err := os.ReadFile(filepath.Join(c.NodeDir(node), modeFile)); err == nil {
		mode = strings.TrimSpace(string(m))
	}
	switch label {
	case LabelBootPartition:
		if value == "" {
			return invalid("boot_partition needs the root partition (root_uuid)")
		}
		if !strings.Contains(value, "=") {
			value = "UUID=" + value
		}
		if _, err := os.Stat(filepath.Join(c.NodeDir(node), "kernel")); err != nil {
			return invalid("boot_partition needs the instance kernel and ramdisk (give instance_kernel and instance_ramdisk to pxe.prepare)")
		}
	case LabelBootWholeDisk:
		if mode == "uefi" && !c.IPXE {
			return invalid("Conflict: Whole disk image being used for deploy, but cannot be used with node %s configured to use UEFI boot with netboot option", node)
		}
		if value == "" && !c.IPXE {
			return invalid("boot_whole_disk needs the disk identifier (disk_identifier, the MBR signature as 0x%%08x)")
		}
	case LabelDeploy:
	default:
		return invalid("switch to %q: want local, boot_partition, boot_whole_disk or deploy", label)
	}
	return writeAtomic(cfgPath, switchConfig(cfg, c.IPXE, label, value), 0o644)
}

// removeConfig removes the node's config and every link to it.
func (c Config) removeConfig(node string) error {
	var errs []error
	errs = append(errs, c.removeLinks(node))
	if err := os.Remove(filepath.Join(c.NodeDir(node), "config")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeLinks removes the MAC-named links that point into the node's
// directory (found by reading the links, so a changed port list leaves
// nothing behind).
func (c Config) removeLinks(node string) error {
	var errs []error
	for _, dir := range []string{c.root(), filepath.Join(c.root(), "pxelinux.cfg")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for _, e := range ents {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			p := filepath.Join(dir, e.Name())
			t, err := os.Readlink(p)
			if err != nil {
				continue
			}
			if strings.Contains(filepath.ToSlash(t), node+"/") {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Clean removes everything Prepare wrote for the node: links, the node
// directory, the dnsmasq snippets, and master cache entries no node uses
// any more. Cleaning a clean node is not an error.
func (c Config) Clean(node string) error {
	if !uuidRE.MatchString(node) {
		return invalid("node %q: not a UUID", node)
	}
	var errs []error
	errs = append(errs, c.removeLinks(node))
	if err := os.RemoveAll(c.NodeDir(node)); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []string{c.HostsDir, c.OptsDir} {
		if d == "" {
			continue
		}
		if err := os.Remove(filepath.Join(d, node)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.pruneMaster())
	removeIfEmpty(filepath.Join(c.root(), "pxelinux.cfg"))
	return errors.Join(errs...)
}

// cacheInto places src at dst through the master cache: src is copied
// once into <master>/<sha256> and dst hard-linked to it (copied when the
// link is impossible, e.g. across file systems).
func (c Config) cacheInto(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(c.MasterPath, 0o755); err != nil {
		return fmt.Errorf("master cache: %w (check [pxe] tftp_master_path)", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(c.MasterPath, ".incoming-*")
	if err != nil {
		return fmt.Errorf("master cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, in}); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	master := filepath.Join(c.MasterPath, hex.EncodeToString(h.Sum(nil)))
	// Link (or copy) to a temporary name beside dst, then rename. The
	// node's file is linked to the master entry when there is one, else to
	// the new copy, which then becomes the master entry; a concurrent Clean
	// pruning the entry cannot leave the node without its file.
	tdst := filepath.Join(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
	os.Remove(tdst)
	if err := os.Link(master, tdst); err != nil {
		if err := os.Link(tmp.Name(), tdst); err != nil {
			if err := copyFile(tmp.Name(), tdst); err != nil {
				os.Remove(tdst)
				return err
			}
		}
		if err := os.Rename(tmp.Name(), master); err != nil {
			os.Remove(tdst)
			return err
		}
	}
	if err := os.Rename(tdst, dst); err != nil {
		os.Remove(tdst)
		return err
	}
	return nil
}

// pruneMaster removes master cache entries that no node directory links
// to any more (link count 1).
func (c Config) pruneMaster() error {
	ents, err := os.ReadDir(c.MasterPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(c.MasterPath, e.Name())
		if linkCount(p) == 1 {
			os.Remove(p)
		}
	}
	if rest, err := os.ReadDir(c.MasterPath); err == nil && len(rest) == 0 {
		os.Remove(c.MasterPath)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// symlinkAtomic makes path a symlink to target, replacing what is there.
func symlinkAtomic(target, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-link-"+filepath.Base(path))
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
