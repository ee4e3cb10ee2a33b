package sim

import (
	"context"
	"errors"
	"strings"
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

// systemReset applies a ComputerSystem.Reset ResetType.
func (s *Server) systemReset(resetType string) error {
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
			s.powerOffLocked()
		case "ForceRestart", "GracefulRestart", "ColdBoot":
			if !on {
				return opErr("state", "the server is off")
			}
			s.bootLocked()
		case "PushPowerButton", "Press":
			if on {
				s.powerOffLocked()
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
