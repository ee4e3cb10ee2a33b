//go:build linux

package deployagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// partitionNode returns the device node of partition n of disk, waiting (up
// to 10 s) for devtmpfs to add it after the partition table was re-read,
// else making it from sysfs (major:minor).
func partitionNode(ctx context.Context, disk Disk, n int) (string, error) {
	name := partName(disk.Name, n)
	node := filepath.Join(filepath.Dir(disk.Path), name)
	if st, err := os.Stat(disk.Path); err != nil || st.Mode()&os.ModeDevice == 0 {
		return "", fmt.Errorf("partition %d: %s is not a block device (no partition device nodes)", n, disk.Path)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(node); err == nil {
			return node, nil
		}
		if b, err := os.ReadFile(filepath.Join("/sys/class/block", name, "dev")); err == nil {
			var major, minor uint32
			if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err == nil {
				if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err == nil || errors.Is(err, os.ErrExist) {
					return node, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no device node %s for partition %d (the kernel did not re-read the partition table of %s)", node, n, disk.Name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// byUUIDLink makes /dev/disk/by-uuid/<uuid> point at node, as udev does in
// an IPA ramdisk: grub-mkconfig writes root=UUID=<uuid> only when that link
// exists (else root=/dev/sdX, which need not name the disk at next boot).
func byUUIDLink(node, uuid string) {
	dir := filepath.Join(filepath.Dir(node), "disk", "by-uuid")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	link := filepath.Join(dir, uuid)
	_ = os.Remove(link)
	_ = os.Symlink("../../"+filepath.Base(node), link)
}

// mounts is a stack of mount points, unmounted in reverse order.
type mounts []string

func (m *mounts) mount(src, dst, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", src, dst, err)
	}
	*m = append(*m, dst)
	return nil
}

// unmountAll unmounts everything, last first (lazily when busy), and
// returns the first error.
func (m *mounts) unmountAll() error {
	var first error
	for i := len(*m) - 1; i >= 0; i-- {
		p := (*m)[i]
		if err := unix.Unmount(p, 0); err != nil {
			if err2 := unix.Unmount(p, unix.MNT_DETACH); err2 != nil && first == nil {
				first = fmt.Errorf("unmounting %s: %w", p, err)
			}
		}
	}
	*m = nil
	return first
}

// chrootTool finds name (grub2-install before grub-install, as IPA) in the
// usual directories of the root file system at root; it returns the path
// inside the chroot and the prefix ("grub2" or "grub").
func chrootTool(root string, names ...string) (string, string) {
	for _, n := range names {
		for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
			if _, err := os.Lstat(filepath.Join(root, d, n)); err == nil {
				return filepath.Join(d, n), strings.SplitN(n, "-", 2)[0]
			}
		}
	}
	return "", ""
}

// runChroot runs argv chrooted into root; the error carries the tool's
// output tail.
func runChroot(ctx context.Context, root string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C", "HOME=/root",
		"GRUB_DISABLE_OS_PROBER=true"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("chroot %s: %s failed: %v: %s", root, strings.Join(argv, " "), err, tailLines(out.String(), 8))
	}
	return nil
}

// installGrub mounts partition part of disk (file system uuid) and runs
// the image's grub-install and grub-mkconfig chrooted into it, with /dev,
// /proc, /sys and /run bind-mounted: --target=i386-pc <disk> when esp is
// nil, else (UEFI) with esp mounted on /boot/efi --target=x86_64-efi
// --efi-directory=/boot/efi --removable --no-nvram.
func installGrub(ctx context.Context, disk Disk, part Partition, uuid string, esp *Partition) (err error) {
	node, err := partitionNode(ctx, disk, part.Number)
	if err != nil {
		return err
	}
	espNode := ""
	if esp != nil {
		if espNode, err = partitionNode(ctx, disk, esp.Number); err != nil {
			return err
		}
	}
	byUUIDLink(node, uuid)
	root, err := os.MkdirTemp("", "lightsout-root-")
	if err != nil {
		return err
	}
	var ms mounts
	defer func() {
		unix.Sync()
		if uerr := ms.unmountAll(); uerr != nil && err == nil {
			err = uerr
		}
		if err == nil {
			_ = os.Remove(root)
		}
	}()
	if err := ms.mount(node, root, "ext4", 0, ""); err != nil {
		return fmt.Errorf("%w (the lightsout agent mounts ext4 roots)", err)
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/run"} {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		dst := filepath.Join(root, d)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := ms.mount(d, dst, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	install, prefix := chrootTool(root, "grub2-install", "grub-install")
	if install == "" {
		return errors.New("the image carries no grub2-install or grub-install (in /usr/sbin, /sbin, /usr/bin, /bin): local boot needs GRUB in the image")
	}
	mkconfig, _ := chrootTool(root, prefix+"-mkconfig")
	if mkconfig == "" {
		return fmt.Errorf("the image carries %s but no %s-mkconfig", install, prefix)
	}
	argv := []string{install, "--target=i386-pc", disk.Name}
	if esp != nil {
		dst := filepath.Join(root, "boot", "efi")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		// iocharset=ascii: the ramdisk carries nls_ascii (the kernel's
		// default utf8 may be a module it lacks)
		if err := ms.mount(espNode, dst, "vfat", 0, "codepage=437,iocharset=ascii"); err != nil {
			return fmt.Errorf("EFI system partition: %w", err)
		}
		argv = []string{install, "--target=x86_64-efi", "--efi-directory=/boot/efi", "--removable", "--no-nvram"}
	}
	if err := runChroot(ctx, root, argv...); err != nil {
		return err
	}
	return runChroot(ctx, root, mkconfig, "-o", "/boot/"+prefix+"/grub.cfg")
}
