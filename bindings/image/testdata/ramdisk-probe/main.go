// ramdisk-probe is the /init of the deploy ramdisk boot test (bindings/image
// TestRamdiskBoot): it mounts /proc, /sys and /dev, loads every module
// /etc/lightsout/modules.load lists with finit_module (as the agent's init
// mode does), prints one line per module, the loaded modules from
// /proc/modules, a marker, and powers the machine off. Build it with
// CGO_ENABLED=0.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"
)

func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func main() {
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	_ = syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	// keep kernel messages from interleaving with our lines
	_ = os.WriteFile("/proc/sys/kernel/printk", []byte("1\n"), 0)
	// the kernel opened /dev/console for us as stdout
	uptime, _ := os.ReadFile("/proc/uptime")
	say("RAMDISK-PROBE-START pid=%d uptime=%s", os.Getpid(), strings.Fields(string(uptime) + " ?")[0])
	f, err := os.Open("/etc/lightsout/modules.load")
	if err != nil {
		say("RAMDISK-PROBE-FAIL %v", err)
		poweroff()
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		n++
		say("RAMDISK-PROBE-LOAD %s %s", p, load(p))
	}
	f.Close()
	mods, _ := os.ReadFile("/proc/modules")
	for _, l := range strings.Split(strings.TrimSpace(string(mods)), "\n") {
		if fs := strings.Fields(l); len(fs) > 0 {
			say("RAMDISK-PROBE-LOADED %s", fs[0])
		}
	}
	say("RAMDISK-PROBE-OK listed=%d", n)
	poweroff()
}

// load returns "ok", "exists" or the errno name of finit_module.
func load(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return "open-error " + err.Error()
	}
	defer f.Close()
	params, _ := syscall.BytePtrFromString("")
	_, _, e := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(params)), 0)
	switch e {
	case 0:
		return "ok"
	case syscall.EEXIST:
		return "exists"
	default:
		return "errno=" + errnoName(e)
	}
}

func errnoName(e syscall.Errno) string {
	names := map[syscall.Errno]string{syscall.ENOENT: "ENOENT", syscall.ENOEXEC: "ENOEXEC", syscall.ENODEV: "ENODEV",
		syscall.EINVAL: "EINVAL", syscall.EPERM: "EPERM", syscall.ENOMEM: "ENOMEM", syscall.EBUSY: "EBUSY",
		syscall.ENXIO: "ENXIO", syscall.EKEYREJECTED: "EKEYREJECTED"}
	if n, ok := names[e]; ok {
		return n
	}
	return fmt.Sprintf("%d(%v)", int(e), e)
}

func poweroff() {
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// sysFinitModule is finit_module(2) on amd64 (the syscall package lacks it).
const sysFinitModule = 313
