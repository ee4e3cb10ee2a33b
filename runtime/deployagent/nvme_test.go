package deployagent

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestPlanNVMeFormat(t *testing.T) {
	ctrl := func(oacs uint16, fna byte) []byte {
		b := make([]byte, 4096)
		binary.LittleEndian.PutUint16(b[nvmeIDCtrlOACS:], oacs)
		b[nvmeIDCtrlFNA] = fna
		return b
	}
	ns := func(flbas, nlbaf byte) []byte {
		b := make([]byte, 4096)
		b[nvmeIDNsFLBAS], b[nvmeIDNsNLBAF] = flbas, nlbaf
		return b
	}
	for _, tc := range []struct {
		name        string
		ctrl, ns    []byte
		want        nvmeFormatPlan
		cdw10       uint32
		unsupported bool
	}{
		{"no Format NVM in OACS", ctrl(0x0001, 0), ns(0, 0), nvmeFormatPlan{}, 0, true},
		{"user data erase, LBA format 1 kept", ctrl(0x0002, 0), ns(0x01, 1), nvmeFormatPlan{NSID: 1, LBAF: 1, SES: 1}, 1 | 1<<9, false},
		{"crypto erase, all namespaces", ctrl(0x0006, 0x05), ns(0x00, 0), nvmeFormatPlan{NSID: 0xFFFFFFFF, LBAF: 0, SES: 2}, 2 << 9, false},
		{"extended LBA format index", ctrl(0x0002, 0), ns(0x23, 20), nvmeFormatPlan{NSID: 1, LBAF: 0x13, SES: 1}, 3 | 1<<12 | 1<<9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planNVMeFormat(tc.ctrl, tc.ns, 1)
			if tc.unsupported {
				if !errors.Is(err, errNVMeFormatUnsupported) {
					t.Fatalf("err = %v, want unsupported", err)
				}
				return
			}
			if err != nil || p != tc.want || p.cdw10() != tc.cdw10 {
				t.Fatalf("plan = %+v (cdw10 %#x), %v; want %+v (%#x)", p, p.cdw10(), err, tc.want, tc.cdw10)
			}
		})
	}
	if _, err := planNVMeFormat(make([]byte, 10), make([]byte, 4096), 1); err == nil {
		t.Error("short identify data accepted")
	}
}
