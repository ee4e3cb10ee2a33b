package pxe

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// The placeholders Switch replaces (Ironic's switch_pxe_config): the root
// partition for a partition image netboot and the MBR disk identifier for a
// whole-disk image chain-loaded by pxelinux.
const (
	RootPlaceholder = "{{ ROOT }}"
	DiskPlaceholder = "{{ DISK_IDENTIFIER }}"
)

// The labels of a config: the deploy ramdisk, and the two netboot targets.
const (
	LabelDeploy        = "deploy"
	LabelBootPartition = "boot_partition"
	LabelBootWholeDisk = "boot_whole_disk"
)

// biosTemplate is the pxelinux config (Ironic's pxe_config.template).
const biosTemplate = `default deploy

label deploy
kernel {{.DeployKernel}}
append initrd={{.DeployRamdisk}} selinux=0 troubleshoot=0 text {{.Append}}
ipappend 2

label boot_partition
kernel {{.Kernel}}
append initrd={{.Ramdisk}} root={{.Root}} ro text {{.AppendParams}}

label boot_whole_disk
COM32 chain.c32
append mbr:{{.DiskIdentifier}}
`

// uefiTemplate is the GRUB config for UEFI (Ironic's pxe_grub_config.template).
// The root placeholder is quoted: unquoted braces are a GRUB syntax error
// that makes GRUB refuse the whole file, deploy entry included
// (grub-script-check says so); GRUB drops the quotes from the argument.
const uefiTemplate = `set default=deploy
set timeout=5
set hidden_timeout_quiet=false

menuentry "deploy" {
    linux {{.DeployKernel}} selinux=0 troubleshoot=0 text {{.Append}}
    initrd {{.DeployRamdisk}}
}

menuentry "boot_partition" {
    linux {{.Kernel}} root="{{.Root}}" ro text {{.AppendParams}}
    initrd {{.Ramdisk}}
}
`

// ipxeTemplate is the iPXE script (Ironic's ipxe_config.template, shortened).
const ipxeTemplate = `#!ipxe

goto deploy

:deploy
imgfree
kernel {{.DeployKernel}} selinux=0 troubleshoot=0 text {{.Append}} initrd=deploy_ramdisk || goto retry
initrd --name deploy_ramdisk {{.DeployRamdisk}} || goto retry
boot

:retry
echo Fetching the deploy kernel or ramdisk failed, retrying in 5 seconds.
sleep 5
goto deploy

:boot_partition
imgfree
kernel {{.Kernel}} root={{.Root}} ro text {{.AppendParams}} initrd=ramdisk || goto boot_partition
initrd --name ramdisk {{.Ramdisk}} || goto boot_partition
boot

:boot_whole_disk
sanboot --no-describe --drive 0x80
`

// bootIPXE is the shared <http_root>/boot.ipxe the DHCP snippet points
// iPXE to: it chains the node's config by MAC (Ironic's boot.ipxe).
const bootIPXE = `#!ipxe

# load the node's config by MAC, as written by lightsout (pxe.prepare)
chain pxelinux.cfg/${mac:hexhyp} || goto error_no_config

:error_no_config
echo PXE boot failed: no configuration found for MAC ${mac}
echo Press any key to reboot...
prompt --timeout 180
reboot
`

// grubMaster is the shared <tftp_root>/grub/grub.cfg GRUB reads first: it
// loads the node's config through its MAC link (Ironic's master grub.cfg).
const grubMaster = `set default=master
set timeout=5
set hidden_timeout_quiet=false

menuentry "master" {
    configfile /$net_default_mac.conf
}
`

// templateData is what a config template sees.
type templateData struct {
	DeployKernel, DeployRamdisk string // paths (TFTP) or URLs (iPXE)
	Kernel, Ramdisk             string // the instance's, for a partition image netboot
	AppendParams                string // [pxe] pxe_append_params
	Params                      string // the deploy's own kernel parameters (agent URL, ...)
	Append                      string // AppendParams and Params, space-joined
	Root, DiskIdentifier        string // the placeholders
	NodeUUID                    string
}

// render renders the config for mode with the configured or built-in template.
func (c Config) render(mode string, d templateData) ([]byte, error) {
	src, file := biosTemplate, c.BIOSTemplate
	opt := "pxe_config_template"
	switch {
	case c.IPXE:
		src, file, opt = ipxeTemplate, c.IPXETemplate, "ipxe_config_template"
	case mode == "uefi":
		src, file, opt = uefiTemplate, c.UEFITemplate, "uefi_pxe_config_template"
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("[pxe] %s: %w", opt, err)
		}
		src = string(b)
	}
	t, err := template.New(opt).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("[pxe] %s: %w", opt, err)
	}
	d.Root, d.DiskIdentifier = RootPlaceholder, DiskPlaceholder
	d.Append = strings.Join(strings.Fields(d.AppendParams+" "+d.Params), " ")
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("[pxe] %s: %w", opt, err)
	}
	return buf.Bytes(), nil
}

// switchConfig rewrites a rendered config to boot label (Ironic's
// switch_pxe_config): the default line points to it and the placeholder
// is replaced by value.
func switchConfig(cfg []byte, ipxe bool, label, value string) []byte {
	s := string(cfg)
	switch label {
	case LabelBootPartition:
		s = strings.ReplaceAll(s, RootPlaceholder, value)
	case LabelBootWholeDisk:
		s = strings.ReplaceAll(s, DiskPlaceholder, value)
	}
	lines := strings.Split(s, "\n")
	firstGoto := true
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case ipxe && firstGoto && strings.HasPrefix(t, "goto "):
			// the script's first goto picks what it boots
			lines[i], firstGoto = "goto "+label, false
		case !ipxe && strings.HasPrefix(t, "default "):
			lines[i] = "default " + label
		case !ipxe && strings.HasPrefix(t, "set default="):
			lines[i] = "set default=" + label
		}
	}
	return []byte(strings.Join(lines, "\n"))
}
