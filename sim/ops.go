package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// opError is a state-level refusal that each protocol renders its own way.
type opError struct {
	kind string // "state" (InvalidOperationForSystemState), "value", "legacy", "media", "notinserted", "license", "password"
	msg  string
}

func (e *opError) Error() string { return e.msg }

func opErr(kind, msg string) error { return &opError{kind, msg} }

func opKind(err error) string {
	var oe *opError
	if errors.As(err, &oe) {
		return oe.kind
	}
	return ""
}

// redfish Boot targets <-> device classes.
var targetToDevice = map[string]string{
	"cd": "CDROM", "hdd": "HDD", "pxe": "NETWORK", "usb": "USB", "floppy": "FLOPPY",
	"uefihttp": "UEFIHTTP", "uefitarget": "ISCSI", "uefishell": "UEFI_SHELL", "biossetup": "RBSU",
	"utilities": "UTILITIES", "diags": "DIAGS", "sdcard": "SDCARD",
}

var deviceToTarget = map[string]string{
	"CDROM": "Cd", "HDD": "Hdd", "NETWORK": "Pxe", "USB": "Usb", "FLOPPY": "Floppy",
	"UEFIHTTP": "UefiHttp", "ISCSI": "UefiTarget", "UEFI_SHELL": "UefiShell", "RBSU": "BiosSetup",
	"UTILITIES": "Utilities", "DIAGS": "Diags", "SDCARD": "SDCard",
}

var allowableTargets = []string{"None", "Cd", "Hdd", "Usb", "SDCard", "Utilities", "Diags", "BiosSetup", "Pxe", "UefiShell", "UefiHttp", "UefiTarget"}

// bootOverride returns the Redfish/REST view of the boot override.
func bootOverride(st *State) (enabled, target string) {
	if st.OneTimeBoot != "" && !strings.EqualFold(st.OneTimeBoot, "Normal") {
		t := deviceToTarget[strings.ToUpper(st.OneTimeBoot)]
		if t == "" {
			t = "None"
		}
		return "Once", t
	}
	if st.ContinuousOverride && len(st.PersistentBoot) > 0 {
		return "Continuous", deviceToTarget[st.PersistentBoot[0]]
	}
	return "Disabled", "None"
}

// setOverride applies a Redfish/REST boot override PATCH. enabled or target
// may be empty (unchanged).
func (s *Server) setOverride(enabled, target string) error {
	return s.do(func(st *State) error {
		curEnabled, curTarget := bootOverride(st)
		if enabled == "" {
			enabled = curEnabled
			if enabled == "Disabled" && target != "" && !strings.EqualFold(target, "None") {
				enabled = "Once"
			}
		}
		if target == "" {
			target = curTarget
		}
		dev := ""
		if !strings.EqualFold(target, "None") {
			dev = targetToDevice[strings.ToLower(target)]
			if dev == "" {
				return opErr("value", "BootSourceOverrideTarget "+target+" is not an allowable value")
			}
		}
		switch strings.ToLower(enabled) {
		case "disabled":
			st.OneTimeBoot = "Normal"
			st.ContinuousOverride = false
		case "once":
			if dev == "" {
				return opErr("value", "BootSourceOverrideEnabled Once needs a BootSourceOverrideTarget other than None")
			}
			st.OneTimeBoot = dev
			st.ContinuousOverride = false
		case "continuous":
			if dev == "" {
				return opErr("value", "BootSourceOverrideEnabled Continuous needs a BootSourceOverrideTarget other than None")
			}
			st.OneTimeBoot = "Normal"
			st.PersistentBoot = reorder(st.PersistentBoot, []string{dev})
			st.ContinuousOverride = true
		default:
			return opErr("value", "BootSourceOverrideEnabled "+enabled+" is not an allowable value")
		}
		return nil
	})
}

// resetTypes are the ComputerSystem.Reset types the generation's iLO
// offers: iLO 4 has no graceful ones.
func (g Generation) resetTypes() []string {
	if g == Gen9 {
		return []string{"On", "ForceOff", "ForceRestart", "Nmi", "PushPowerButton"}
	}
	return []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "Nmi", "PushPowerButton", "GracefulRestart"}
}

// systemReset applies a ComputerSystem.Reset ResetType.
func (s *Server) systemReset(resetType string) error {
	if s.gen == Gen9 && (resetType == "GracefulShutdown" || resetType == "GracefulRestart") {
		return opErr("value", "ResetType "+resetType+" is not an allowable value")
	}
	return s.do(func(st *State) error {
		on := st.Power == "ON"
		switch resetType {
		case "On":
			if on {
				return opErr("state", "the server is already on")
			}
			s.bootLocked()
		case "ForceOff", "GracefulShutdown":
			if !on {
				return opErr("state", "the server is already off")
			}
			if resetType == "GracefulShutdown" {
				s.gracefulLocked()
			} else {
				s.powerOffLocked()
			}
		case "ForceRestart", "GracefulRestart", "ColdBoot":
			if !on {
				return opErr("state", "the server is off")
			}
			s.bootLocked()
		case "PushPowerButton", "Press":
			if on {
				s.gracefulLocked()
			} else {
				s.bootLocked()
			}
		case "PressAndHold":
			if on {
				s.powerOffLocked()
			}
		case "Nmi":
			if !on {
				return opErr("state", "the server is off")
			}
			st.NMIs++
		default:
			return opErr("value", "ResetType "+resetType+" is not an allowable value")
		}
		return nil
	})
}

// indicatorLED is the Redfish view of the UID light.
func indicatorLED(st *State) string {
	if st.UID == "ON" {
		return "Lit"
	}
	return "Off"
}

// assetTag is the asset tag set through RIBCL/Redfish, else the hardware's.
func assetTag(st *State, hw *Hardware) string {
	if st.AssetTag != "" {
		return st.AssetTag
	}
	return hw.AssetTag
}

// patchSystemMisc applies the AssetTag and IndicatorLED of a Systems PATCH.
func (s *Server) patchSystemMisc(body map[string]any) error {
	tag, hasTag := body["AssetTag"]
	led, hasLED := body["IndicatorLED"]
	if !hasTag && !hasLED {
		return nil
	}
	t, ok := tag.(string)
	if hasTag && (!ok || len(t) > 32) {
		return opErr("value", "AssetTag must be a string of at most 32 characters")
	}
	l, _ := led.(string)
	if hasLED && l != "Lit" && l != "Off" && l != "Blinking" {
		return opErr("value", "IndicatorLED "+l+" is not an allowable value (Lit, Off, Blinking)")
	}
	return s.do(func(st *State) error {
		if hasTag {
			st.AssetTag = t
		}
		if hasLED {
			st.UID = map[bool]string{true: "OFF", false: "ON"}[l == "Off"]
		}
		return nil
	})
}

// setPendingMode sets the pending boot mode ("UEFI" or "LEGACY").
func (s *Server) setPendingMode(mode string) error {
	switch strings.ToLower(mode) {
	case "uefi":
		mode = "UEFI"
	case "legacybios", "legacy":
		mode = "LEGACY"
	default:
		return opErr("value", "BootMode "+mode+" is not an allowable value")
	}
	return s.do(func(st *State) error {
		if !s.hw.supportsMode(mode) {
			return opErr("value", "BootMode "+mode+" is not supported on this server")
		}
		st.PendingBootMode = mode
		return nil
	})
}

func (s *Server) setSecureBoot(enable bool) error {
	return s.do(func(st *State) error {
		if st.BootMode != "UEFI" {
			return opErr("legacy", "secure boot needs UEFI boot mode")
		}
		st.SecureBootEnable = enable
		return nil
	})
}

// resetKeys: "ResetAllKeysToDefault" or "DeleteAllKeys" (also "DeletePK").
func (s *Server) resetKeys(kind string) error {
	return s.do(func(st *State) error {
		if st.BootMode != "UEFI" {
			return opErr("legacy", "secure boot keys need UEFI boot mode")
		}
		switch kind {
		case "ResetAllKeysToDefault":
			st.SecureBootKeys = "default"
		case "DeleteAllKeys", "DeletePK":
			st.SecureBootKeys = "deleted"
			st.SecureBootEnable = false
		default:
			return opErr("value", "ResetKeysType "+kind+" is not an allowable value")
		}
		return nil
	})
}

func (s *Server) insertMedia(ctx context.Context, dev, url string, writeProtect *bool) error {
	if err := s.sim.checkImageURL(ctx, url); err != nil {
		return opErr("media", err.Error())
	}
	return s.do(func(st *State) error {
		m := Media{URL: url, Inserted: true, BootOption: "BOOT_ALWAYS", WriteProtect: true}
		if writeProtect != nil {
			m.WriteProtect = *writeProtect
		}
		st.Media[dev] = m
		return nil
	})
}

func (s *Server) ejectMedia(dev string) error {
	return s.do(func(st *State) error {
		if !st.Media[dev].Inserted {
			return opErr("notinserted", "no media is inserted in "+dev)
		}
		st.Media[dev] = Media{BootOption: "BOOT_ALWAYS"}
		return nil
	})
}

func (s *Server) setBootOnNextReset(dev string, v bool) error {
	return s.do(func(st *State) error {
		m := st.Media[dev]
		if v {
			m.BootOption = "BOOT_ONCE"
		} else {
			m.BootOption = "BOOT_ALWAYS"
		}
		st.Media[dev] = m
		return nil
	})
}

// setPassword changes an account's password (minimum length 8, as iLO's default).
func (s *Server) setPassword(login, pw string) error {
	if len(pw) < 8 {
		return rerr(statusPwTooShort, "Password is too short.")
	}
	if len(pw) > 39 {
		return rerr(0x0001, "Password is too long.")
	}
	return s.do(func(st *State) error {
		for i := range st.Users {
			if st.Users[i].Login == login {
				st.Users[i].Password = pw
				return nil
			}
		}
		return rerr(0x000A, "User login name was not found")
	})
}

// activateLicense installs an iLO Advanced key (25 characters in 5 groups).
func (s *Server) activateLicense(key string) error {
	if !licenseKeyRE.MatchString(key) {
		return fmt.Errorf("license key error")
	}
	return s.do(func(st *State) error {
		st.Licenses = []License{{
			Type:        "iLO Advanced",
			Key:         strings.ToUpper(key),
			InstallDate: time.Now().UTC().Format("Mon Jan _2 15:04:05 2006"),
			Class:       "FQL",
		}}
		return nil
	})
}

// resetILO makes the iLO unreachable for ILOResetTime and ends its sessions.
func (s *Server) resetILO() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.ILOResets++
	clear(s.sessions)
	if d := s.sim.opts.ILOResetTime; d > 0 {
		s.resetUntil = time.Now().Add(d)
	}
	_ = s.saveLocked()
}

func vmDevice(cmd *xnode) (string, bool) {
	d, _ := cmd.attr("DEVICE")
	d = strings.ToUpper(d)
	return d, d == "CDROM" || d == "FLOPPY"
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// normaliseOneTime maps a SET_ONE_TIME_BOOT value to the state's spelling.
func normaliseOneTime(v string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(v))
	switch u {
	case "NORMAL":
		return "Normal", true
	case "CDROM", "HDD", "NETWORK", "FLOPPY", "USB", "RBSU", "UEFIHTTP", "ISCSI":
		return u, true
	case "EMB-MENU", "UEFI_SHELL":
		return u, true
	}
	if strings.HasPrefix(u, "BOOT") && len(u) == 8 {
		return "Boot" + u[4:], true
	}
	if strings.HasPrefix(u, "NETWORK") {
		return "NETWORK", true
	}
	return "", false
}

func normaliseDevice(v string) string {
	u := strings.ToUpper(strings.TrimSpace(v))
	switch u {
	case "CDROM", "HDD", "USB", "FLOPPY", "NETWORK":
		return u
	}
	if strings.HasPrefix(u, "NETWORK") {
		return "NETWORK"
	}
	return ""
}

// reorder moves first (in order) to the front of order, keeping the rest.
func reorder(order, first []string) []string {
	out := make([]string, 0, len(order))
	seen := map[string]bool{}
	for _, d := range first {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, d := range order {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

type uefiBoot struct{ id, desc string }

// uefiEntry is the UEFI boot option a device class shows as.
func uefiEntry(class string, hw *Hardware) (uefiBoot, bool) {
	switch class {
	case "CDROM":
		return uefiBoot{"Boot000B", "iLO Virtual USB 2 : HP iLO Virtual USB CD/DVD ROM"}, true
	case "HDD":
		if len(hw.LogicalDrivesGB) == 0 {
			return uefiBoot{}, false
		}
		return uefiBoot{"Boot0007", fmt.Sprintf("Embedded RAID 1 : Smart Array P440ar Controller - %d GiB, RAID 1 Logical Drive 1(Target:0, Lun:0)", hw.LogicalDrivesGB[0])}, true
	case "NETWORK":
		return uefiBoot{"Boot0009", "Embedded LOM 1 Port 1 : HP Ethernet 1Gb 4-port 331i Adapter - NIC (PXE IPv4) "}, true
	case "USB":
		return uefiBoot{"Boot000A", "iLO Virtual USB 1 : HP iLO Virtual USB Key"}, true
	}
	return uefiBoot{}, false
}

func uefiClassOf(id string) string {
	switch strings.ToUpper(id) {
	case "BOOT000B":
		return "CDROM"
	case "BOOT0007":
		return "HDD"
	case "BOOT0009":
		return "NETWORK"
	case "BOOT000A":
		return "USB"
	}
	return ""
}
