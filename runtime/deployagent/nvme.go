package deployagent

import (
	"encoding/binary"
	"errors"
)

// NVMe identify data offsets (NVM Express Base Specification).
const (
	nvmeIDCtrlOACS = 256 // Optional Admin Command Support (2 bytes)
	nvmeIDCtrlFNA  = 524 // Format NVM Attributes (1 byte)
	nvmeIDNsFLBAS  = 26  // Formatted LBA Size (1 byte)
	nvmeIDNsNLBAF  = 25  // Number of LBA Formats (0's based)
)

// nvmeFormatPlan is how erase_devices formats an NVMe namespace.
type nvmeFormatPlan struct {
	NSID uint32 // the namespace, or 0xFFFFFFFF when format applies to all
	LBAF uint32 // current LBA format index (kept)
	SES  uint32 // secure erase setting: 1 user data erase, 2 crypto erase
}

// errNVMeFormatUnsupported is returned when the controller does not
// clearly support Format NVM with a secure erase.
var errNVMeFormatUnsupported = errors.New("the controller does not support Format NVM")

// planNVMeFormat decides from Identify Controller and Identify Namespace
// data whether a secure Format NVM is clearly supported: OACS bit 1
// (Format NVM). It keeps the namespace's LBA format and asks for a user
// data erase (SES=1), or a cryptographic erase when FNA bit 2 says it is
// supported. With FNA bit 0 the format covers all namespaces (NSID
// 0xFFFFFFFF), which erase_devices erases anyway.
func planNVMeFormat(idCtrl, idNs []byte, nsid uint32) (nvmeFormatPlan, error) {
	if len(idCtrl) < 4096 || len(idNs) < 4096 || nsid == 0 {
		return nvmeFormatPlan{}, errors.New("short identify data")
	}
	oacs := binary.LittleEndian.Uint16(idCtrl[nvmeIDCtrlOACS:])
	if oacs&(1<<1) == 0 {
		return nvmeFormatPlan{}, errNVMeFormatUnsupported
	}
	fna := idCtrl[nvmeIDCtrlFNA]
	flbas := idNs[nvmeIDNsFLBAS]
	lbaf := uint32(flbas & 0x0f)
	if nlbaf := uint32(idNs[nvmeIDNsNLBAF]); nlbaf >= 16 {
		lbaf |= uint32(flbas>>5&0x3) << 4 // extended LBA format index (bits 6:5 of FLBAS)
	}
	p := nvmeFormatPlan{NSID: nsid, LBAF: lbaf, SES: 1}
	if fna&(1<<2) != 0 {
		p.SES = 2
	}
	if fna&1 != 0 {
		p.NSID = 0xFFFFFFFF
	}
	return p, nil
}

// cdw10 is the Format NVM command's dword 10: LBAF bits 3:0 (and 13:12
// for the extended index), SES bits 11:9.
func (p nvmeFormatPlan) cdw10() uint32 {
	return p.LBAF&0xf | (p.LBAF>>4&0x3)<<12 | p.SES<<9
}
