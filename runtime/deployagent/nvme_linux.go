//go:build linux

package deployagent

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nvmeAdminCmd is struct nvme_admin_cmd (linux/nvme_ioctl.h).
type nvmeAdminCmd struct {
	Opcode      uint8
	Flags       uint8
	Rsvd1       uint16
	NSID        uint32
	Cdw2, Cdw3  uint32
	Metadata    uint64
	Addr        uint64
	MetadataLen uint32
	DataLen     uint32
	Cdw10       uint32
	Cdw11       uint32
	Cdw12       uint32
	Cdw13       uint32
	Cdw14       uint32
	Cdw15       uint32
	TimeoutMs   uint32
	Result      uint32
}

const (
	nvmeIoctlID       = 0x4E40     // _IO('N', 0x40)
	nvmeIoctlAdminCmd = 0xC0484E41 // _IOWR('N', 0x41, struct nvme_admin_cmd)
	nvmeOpIdentify    = 0x06
	nvmeOpFormatNVM   = 0x80
)

func nvmeAdmin(f *os.File, cmd *nvmeAdminCmd) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), nvmeIoctlAdminCmd, uintptr(unsafe.Pointer(cmd)))
	if errno != 0 {
		return errno
	}
	if cmd.Result != 0 {
		return fmt.Errorf("NVMe status %#x", cmd.Result)
	}
	return nil
}

func nvmeIdentify(f *os.File, nsid, cns uint32) ([]byte, error) {
	buf := make([]byte, 4096)
	cmd := nvmeAdminCmd{Opcode: nvmeOpIdentify, NSID: nsid, Addr: uint64(uintptr(unsafe.Pointer(&buf[0]))),
		DataLen: uint32(len(buf)), Cdw10: cns, TimeoutMs: 30_000}
	err := nvmeAdmin(f, &cmd)
	return buf, err
}

// nvmeSecureFormat formats the NVMe namespace at path with a secure
// erase when the controller clearly supports it. It returns
// errNVMeFormatUnsupported (wrapped) when it does not, having changed
// nothing.
func nvmeSecureFormat(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if !isBlockDevice(f) {
		return fmt.Errorf("%s is not a block device: %w", path, errNVMeFormatUnsupported)
	}
	nsid, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), nvmeIoctlID, 0)
	if errno != 0 || int32(nsid) <= 0 {
		return fmt.Errorf("%s: no NVMe namespace id (%v): %w", path, errno, errNVMeFormatUnsupported)
	}
	idCtrl, err := nvmeIdentify(f, 0, 1)
	if err != nil {
		return fmt.Errorf("identify controller: %v: %w", err, errNVMeFormatUnsupported)
	}
	idNs, err := nvmeIdentify(f, uint32(nsid), 0)
	if err != nil {
		return fmt.Errorf("identify namespace: %v: %w", err, errNVMeFormatUnsupported)
	}
	plan, err := planNVMeFormat(idCtrl, idNs, uint32(nsid))
	if err != nil {
		return err
	}
	cmd := nvmeAdminCmd{Opcode: nvmeOpFormatNVM, NSID: plan.NSID, Cdw10: plan.cdw10(), TimeoutMs: 3_600_000}
	if err := nvmeAdmin(f, &cmd); err != nil {
		return fmt.Errorf("nvme Format NVM (secure erase setting %d): %w", plan.SES, err)
	}
	rereadPartitions(f)
	return nil
}
