// Package pxe is the PXE side of the pxe_ilo driver: the per-node boot
// files Ironic's PXE boot interface writes (ironic-ilo-behaviour §5.3) and
// the built-in boot servers that serve them.
//
//   - Prepare writes <root>/<node uuid>/{deploy_kernel,deploy_ramdisk,config}
//     (root is [pxe] tftp_root, or [deploy] http_root with iPXE), the
//     kernel and ramdisk hard-linked from a master cache keyed by their
//     SHA-256 (copied when a link is impossible), the config rendered from
//     the pxelinux (BIOS), GRUB (UEFI) or iPXE template, the MAC-named
//     links a boot loader looks for, and a dnsmasq host and option snippet
//     per node for the site's DHCP server. Every file is written to a
//     temporary name and renamed, so a reader never sees half a file.
//   - Switch makes the config boot the instance (netboot) or removes it
//     (local boot); Clean removes everything of a node and is idempotent.
//   - TFTPServer (RFC 1350/2347/2348/2349/7440, read-only) and HTTPHandler
//     serve a Tree: only node directories and the shared boot loaders,
//     never a path outside the root.
//
// The Lua face is the module "pxe" (lua.go).
package pxe

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/runtime/module"
)

// Config is the PXE configuration ([pxe], [deploy], [dnsmasq] sections).
type Config struct {
	TFTPRoot   string // [pxe] tftp_root (/tftpboot)
	MasterPath string // [pxe] tftp_master_path (default <root>/master_images)
	HTTPRoot   string // [deploy] http_root (/httpboot)
	HTTPURL    string // [deploy] http_url: how nodes reach HTTPRoot (iPXE)
	IPXE       bool   // [pxe] ipxe_enabled
	// TFTPServer is the address nodes fetch TFTP files from (DHCP options
	// tftp-server and server-ip-address): [pxe] tftp_server, else the host
	// of TFTPAddress when it is not a wildcard.
	TFTPServer   string
	AppendParams string // [pxe] pxe_append_params

	BIOSBootfile     string // [pxe] pxe_bootfile_name (pxelinux.0)
	UEFIBootfile     string // [pxe] uefi_pxe_bootfile_name (bootx64.efi)
	IPXEBootfile     string // [pxe] ipxe_bootfile_name (undionly.kpxe)
	UEFIIPXEBootfile string // [pxe] uefi_ipxe_bootfile_name (snponly.efi)

	// Templates replacing the built-in ones ("" = built-in).
	BIOSTemplate string // [pxe] pxe_config_template
	UEFITemplate string // [pxe] uefi_pxe_config_template
	IPXETemplate string // [pxe] ipxe_config_template

	HostsDir string // [dnsmasq] dhcp_hostsdir (default <state_dir>/dnsmasq/hostsdir)
	OptsDir  string // [dnsmasq] dhcp_optsdir (default <state_dir>/dnsmasq/optsdir)

	// The built-in servers (lightsout serve).
	Builtin     bool   // [pxe] builtin_server
	TFTPAddress string // [pxe] tftp_address (:69)
	HTTPAddress string // [pxe] http_address ("" = no HTTP boot server)
}

func get(c module.Config, section, key string) string {
	v, _ := c.Get(section, key)
	return strings.TrimSpace(v)
}

func getBool(c module.Config, section, key string) (bool, error) {
	v := get(c, section, key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, fmt.Errorf("[%s] %s = %q: want true or false", section, key, v)
	}
	return b, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ConfigFrom reads the PXE configuration, applying Ironic's defaults.
func ConfigFrom(c module.Config) (Config, error) {
	cfg := Config{
		TFTPRoot:         or(get(c, "pxe", "tftp_root"), "/tftpboot"),
		MasterPath:       get(c, "pxe", "tftp_master_path"),
		HTTPRoot:         or(get(c, "deploy", "http_root"), "/httpboot"),
		HTTPURL:          get(c, "deploy", "http_url"),
		TFTPServer:       get(c, "pxe", "tftp_server"),
		AppendParams:     get(c, "pxe", "pxe_append_params"),
		BIOSBootfile:     or(get(c, "pxe", "pxe_bootfile_name"), "pxelinux.0"),
		UEFIBootfile:     or(get(c, "pxe", "uefi_pxe_bootfile_name"), "bootx64.efi"),
		IPXEBootfile:     or(get(c, "pxe", "ipxe_bootfile_name"), "undionly.kpxe"),
		UEFIIPXEBootfile: or(get(c, "pxe", "uefi_ipxe_bootfile_name"), "snponly.efi"),
		BIOSTemplate:     get(c, "pxe", "pxe_config_template"),
		UEFITemplate:     get(c, "pxe", "uefi_pxe_config_template"),
		IPXETemplate:     get(c, "pxe", "ipxe_config_template"),
		HostsDir:         get(c, "dnsmasq", "dhcp_hostsdir"),
		OptsDir:          get(c, "dnsmasq", "dhcp_optsdir"),
		TFTPAddress:      or(get(c, "pxe", "tftp_address"), ":69"),
		HTTPAddress:      get(c, "pxe", "http_address"),
	}
	var err error
	if cfg.IPXE, err = getBool(c, "pxe", "ipxe_enabled"); err != nil {
		return cfg, err
	}
	if cfg.Builtin, err = getBool(c, "pxe", "builtin_server"); err != nil {
		return cfg, err
	}
	if cfg.MasterPath == "" {
		cfg.MasterPath = filepath.Join(cfg.root(), "master_images")
	}
	state := get(c, "lightsout", "state_dir")
	if cfg.HostsDir == "" && state != "" {
		cfg.HostsDir = filepath.Join(state, "dnsmasq", "hostsdir")
	}
	if cfg.OptsDir == "" && state != "" {
		cfg.OptsDir = filepath.Join(state, "dnsmasq", "optsdir")
	}
	if cfg.TFTPServer == "" {
		if h, _, err := net.SplitHostPort(cfg.TFTPAddress); err == nil {
			if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
				cfg.TFTPServer = h
			}
		}
	}
	if cfg.IPXE && cfg.HTTPURL == "" && cfg.HTTPAddress != "" {
		if h, p, err := net.SplitHostPort(cfg.HTTPAddress); err == nil && h != "" && p != "0" {
			cfg.HTTPURL = "http://" + net.JoinHostPort(h, p) + "/"
		}
	}
	return cfg, nil
}

// root is where node directories live: http_root with iPXE, else tftp_root.
func (c Config) root() string {
	if c.IPXE {
		return c.HTTPRoot
	}
	return c.TFTPRoot
}

// Root is where node directories live: [deploy] http_root with iPXE,
// else [pxe] tftp_root (Ironic §5.3).
func (c Config) Root() string { return c.root() }

// NodeDir is <root>/<node uuid>.
func (c Config) NodeDir(node string) string { return filepath.Join(c.root(), node) }
