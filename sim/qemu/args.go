package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// machine is everything one qemu command line depends on.
type machine struct {
	Generation string // gen8 .. gen12
	BootDevice string // CDROM, HDD, NETWORK, FLOPPY, USB, ...
	UEFI       bool
	SecureBoot bool
	CDROM      string // local ISO path, "" when none is inserted
	Floppy     string // local floppy image path, "" when none
	Disk       string // qcow2
	MAC        string // "" lets qemu pick
	Port       int    // host port forwarded to the guest's GuestAgentPort
	ISCSIPort  int    // host port forwarded to the guest's GuestISCSIPort (0: none)
	Tap        string // tap interface of the NIC instead of user networking ("" = user networking)
	Memory     int    // MiB
	CPUs       int
	Accel      string // kvm | tcg
	QMP        string // unix socket path
	Code, Vars string // OVMF pflash images (UEFI only)
}

// oldGen reports whether the generation is a Gen8/Gen9 (iLO 4): e1000 NIC
// and a SATA (AHCI) disk, where Gen10+ get virtio.
func oldGen(g string) bool { return g == "gen8" || g == "gen9" }

// bootOrder is the device order for the boot device the simulator chose.
func bootOrder(dev string) []string {
	switch strings.ToUpper(dev) {
	case "CDROM":
		return []string{"cd", "hd"}
	case "HDD":
		return []string{"hd", "cd"}
	case "NETWORK", "PXE", "UEFIHTTP":
		return []string{"net", "hd", "cd"}
	case "FLOPPY", "USB":
		return []string{"fd", "cd", "hd"}
	}
	return []string{"hd", "cd"}
}

// args builds the qemu command line (without the binary).
func (m machine) args() []string {
	idx := map[string]int{}
	for i, d := range bootOrder(m.BootDevice) {
		idx[d] = i + 1
	}
	bootindex := func(dev string) string {
		if i, ok := idx[dev]; ok {
			return ",bootindex=" + strconv.Itoa(i)
		}
		return ""
	}
	var a []string
	add := func(s ...string) { a = append(a, s...) }
	q35 := m.UEFI
	switch {
	case m.SecureBoot:
		add("-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
			"-global", "ICH9-LPC.disable_s3=1")
	case q35:
		add("-machine", "q35")
	default:
		add("-machine", "pc")
	}
	add("-accel", m.Accel)
	if m.Accel == "kvm" {
		add("-cpu", "host")
	} else {
		add("-cpu", "max")
	}
	add("-m", strconv.Itoa(m.Memory), "-smp", strconv.Itoa(m.CPUs),
		"-display", "none", "-monitor", "none", "-parallel", "none", "-no-reboot",
		"-boot", "strict=on",
		"-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0",
		"-qmp", "unix:"+m.QMP+",server=on,wait=off")
	if m.UEFI {
		add("-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+m.Code,
			"-drive", "if=pflash,format=raw,unit=1,file="+m.Vars)
	}
	// disk
	add("-drive", "if=none,id=hd0,format=qcow2,cache=writeback,discard=unmap,file="+m.Disk)
	switch {
	case !oldGen(m.Generation):
		add("-device", "virtio-blk-pci,drive=hd0"+bootindex("hd"))
	case q35:
		add("-device", "ide-hd,bus=ide.0,drive=hd0"+bootindex("hd"))
	default:
		add("-device", "ahci,id=sata", "-device", "ide-hd,bus=sata.0,drive=hd0"+bootindex("hd"))
	}
	// virtual CD-ROM (SATA on q35, IDE on pc)
	if m.CDROM != "" {
		bus := "ide.1"
		if q35 {
			bus = "ide.2"
		}
		add("-drive", "if=none,id=vcd,media=cdrom,format=raw,readonly=on,file="+m.CDROM,
			"-device", "ide-cd,bus="+bus+",drive=vcd"+bootindex("cd"))
	}
	// virtual floppy: the ISA floppy on pc, a USB key on q35 (iLO's virtual
	// floppy is a USB device)
	if m.Floppy != "" {
		if q35 {
			add("-device", "qemu-xhci,id=xhci",
				"-drive", "if=none,id=vfd,format=raw,readonly=on,file="+m.Floppy,
				"-device", "usb-storage,bus=xhci.0,drive=vfd,removable=on"+bootindex("fd"))
		} else {
			add("-drive", "if=floppy,index=0,format=raw,readonly=on,file="+m.Floppy)
			if i, ok := idx["fd"]; ok {
				add("-global", "isa-fdc.bootindexA="+strconv.Itoa(i))
			}
		}
	}
	// NIC on user networking (or on the server's tap device); the option
	// ROM (PXE) only for a network boot
	nic := "virtio-net-pci"
	if oldGen(m.Generation) {
		nic = "e1000"
	}
	dev := nic + ",netdev=net0"
	if m.MAC != "" {
		dev += ",mac=" + m.MAC
	}
	if _, ok := idx["net"]; ok {
		dev += bootindex("net")
	} else {
		dev += ",romfile="
	}
	var netdev string
	if m.Tap != "" {
		// an existing (persistent) tap: no helper scripts, no forwards;
		// the guest is on whatever network the tap is bridged to
		netdev = "tap,id=net0,ifname=" + m.Tap + ",script=no,downscript=no"
	} else {
		netdev = fmt.Sprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-:%d", m.Port, GuestAgentPort)
		if m.ISCSIPort > 0 {
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", m.ISCSIPort, GuestISCSIPort)
		}
	}
	add("-netdev", netdev, "-device", dev)
	return a
}

// firmware returns the OVMF code and a per-server copy of the variable
// store (created from Debian's template on first use, kept afterwards like
// NVRAM): the secure-boot code with Microsoft keys enrolled when sb.
func (b *Backend) firmware(server string, sb bool) (code, vars string, err error) {
	dir := b.opts.FirmwareDir
	codes, tmpl, copyName := []string{"OVMF_CODE_4M.fd"}, "OVMF_VARS_4M.fd", "OVMF_VARS_4M.fd"
	if sb {
		codes, tmpl, copyName = []string{"OVMF_CODE_4M.secboot.fd", "OVMF_CODE_4M.ms.fd"}, "OVMF_VARS_4M.ms.fd", "OVMF_VARS_4M.ms.fd"
	}
	for _, c := range codes {
		if _, e := os.Stat(filepath.Join(dir, c)); e == nil {
			code = filepath.Join(dir, c)
			break
		}
	}
	if code == "" {
		return "", "", fmt.Errorf("UEFI firmware %s not found in %s: install Debian's ovmf package (apt-get install ovmf) or set the firmware directory", codes[0], dir)
	}
	vars = filepath.Join(b.serverDir(server), copyName)
	if _, e := os.Stat(vars); e == nil {
		return code, vars, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, tmpl))
	if err != nil {
		return "", "", fmt.Errorf("UEFI variable store template: %w (install Debian's ovmf package)", err)
	}
	if err := writeAtomic(vars, data); err != nil {
		return "", "", err
	}
	return code, vars, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
