//go:build linux

package deployagent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// modLoader loads the ramdisk's kernel modules that the machine's devices
// need: the boot set, then a coldplug pass over the devices sysfs lists,
// then each device the kernel announces later (USB virtual media attached
// by the iLO, disks behind a freshly loaded controller). Loads are
// serialised; a module is tried once.
type modLoader struct {
	ix  *ModuleIndex
	log io.Writer

	mu     sync.Mutex
	tried  map[string]bool
	loaded int
}

// loadMachineModules loads the modules this machine needs when the ramdisk
// carries the module index, and keeps loading for devices that appear
// later; without the index (a ramdisk built before it) every module of
// ModulesLoadFile is loaded.
func loadMachineModules(log io.Writer) {
	ix, err := readModuleIndex()
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(log, "lightsout init: module index: %v; loading every module\n", err)
		}
		loadModules(ModulesLoadFile, log)
		return
	}
	// listen before the coldplug pass: a device added while it runs is
	// announced on the socket rather than lost between the two
	events, err := openUevents()
	if err != nil {
		fmt.Fprintf(log, "lightsout init: kernel uevents: %v; devices that appear later get no module\n", err)
	}
	l := &modLoader{ix: ix, log: log, tried: map[string]bool{}}
	l.load(ix.Boot(), "")
	seen := map[string]bool{}
	for {
		var fresh []string
		for _, a := range sysModaliases("/sys") {
			if !seen[a] {
				seen[a] = true
				fresh = append(fresh, a)
			}
		}
		n := 0
		for _, a := range fresh {
			n += l.load(ix.Match(a), "")
		}
		if n == 0 {
			break
		}
	}
	fmt.Fprintf(log, "lightsout init: %d of %d kernel modules loaded for this machine's devices\n", l.loaded, len(ix.order))
	if events >= 0 {
		go l.hotplug(events)
	}
}

func readModuleIndex() (*ModuleIndex, error) {
	var b [4][]byte
	for i, f := range []string{ModulesLoadFile, ModulesDepFile, ModulesAliasFile, ModulesBootFile} {
		var err error
		if b[i], err = os.ReadFile(f); err != nil {
			return nil, err
		}
	}
	return ParseModuleIndex(b[0], b[1], b[2], b[3])
}

// load loads paths not tried before and returns how many loaded; why
// (a hotplugged device's modalias) is logged with each one.
func (l *modLoader) load(paths []string, why string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range paths {
		if l.tried[p] {
			continue
		}
		l.tried[p] = true
		if err := loadModule(p); err != nil {
			fmt.Fprintf(l.log, "lightsout init: loading module %s: %v\n", p, err)
			continue
		}
		n++
		l.loaded++
		if why != "" {
			fmt.Fprintf(l.log, "lightsout init: %s loaded for %s\n", strings.TrimSuffix(filepath.Base(p), ".ko"), why)
		}
	}
	return n
}

// sysModaliases lists the modalias of every device under sys/bus, and the
// PNP ids as udev turns them into one.
func sysModaliases(sys string) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(sys, "bus", "*", "devices", "*", "modalias"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if a := strings.TrimSpace(string(b)); a != "" {
				out = append(out, a)
			}
		}
	}
	ids, _ := filepath.Glob(filepath.Join(sys, "bus", "pnp", "devices", "*", "id"))
	for _, f := range ids {
		if b, err := os.ReadFile(f); err == nil {
			for _, id := range strings.Fields(string(b)) {
				out = append(out, PNPModalias(id))
			}
		}
	}
	return out
}

// openUevents opens the kernel's uevent netlink socket (-1 on error).
func openUevents() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return -1, err
	}
	// a burst of USB or disk events must not overflow the default buffer
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// hotplug loads the modules of each device the kernel adds from now on.
func (l *modLoader) hotplug(fd int) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
				continue
			}
			fmt.Fprintf(l.log, "lightsout init: kernel uevents: %v; no more modules load for new devices\n", err)
			return
		}
		if action, modalias := ParseUevent(buf[:n]); action == "add" && modalias != "" {
			l.load(l.ix.Match(modalias), modalias)
		}
	}
}
