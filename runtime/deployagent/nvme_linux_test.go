//go:build linux

package deployagent

import (
	"testing"
	"unsafe"
)

// nvmeAdminCmd must match struct nvme_admin_cmd byte for byte (72 bytes,
// addr at 24, cdw10 at 40, timeout_ms at 64).
func TestNVMeAdminCmdLayout(t *testing.T) {
	var c nvmeAdminCmd
	if s := unsafe.Sizeof(c); s != 72 {
		t.Errorf("size %d, want 72", s)
	}
	if o := unsafe.Offsetof(c.Addr); o != 24 {
		t.Errorf("addr at %d, want 24", o)
	}
	if o := unsafe.Offsetof(c.Cdw10); o != 40 {
		t.Errorf("cdw10 at %d, want 40", o)
	}
	if o := unsafe.Offsetof(c.TimeoutMs); o != 64 {
		t.Errorf("timeout_ms at %d, want 64", o)
	}
}
