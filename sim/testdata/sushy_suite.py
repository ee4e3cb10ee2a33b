"""Conformance scenario: sushy (Debian python3-sushy) drives one simulated iLO.

argv[1]: JSON {"url", "user", "password", "cacert", "image"}. Prints one JSON
object: every observation by name, or "<step>.error" with the exception when a
step fails. The Go test (sim/conformance_test.go) checks the values.
"""
import json
import sys
import warnings

import sushy
from sushy import auth

warnings.simplefilter("ignore")
cfg = json.loads(sys.argv[1])
obs = {}


def step(name, fn):
    try:
        fn()
    except Exception as exc:  # reported to the Go test
        obs[name + ".error"] = "%s: %s" % (type(exc).__name__, exc)


def connect():
    global root
    root = sushy.Sushy(cfg["url"] + "/redfish/v1/", verify=cfg["cacert"],
                       auth=auth.SessionAuth(cfg["user"], cfg["password"]))
    obs["redfish_version"] = root.redfish_version
    obs["product"] = root.product


def session_service():
    ss = root.get_session_service()
    obs["session_service.name"] = ss.name
    obs["session_service.sessions"] = len(ss.sessions.get_members())


def update_service():
    us = root.get_update_service()
    obs["update_service.name"] = us.name
    us.get_allowed_transfer_protocols()  # needs Actions/#UpdateService.SimpleUpdate
    obs["update_service.firmware"] = sorted(m.name for m in us.firmware_inventory.get_members())


def system():
    global sysr
    sysr = root.get_system("/redfish/v1/Systems/1/")
    obs["system.asset_tag"] = sysr.asset_tag
    obs["system.serial"] = sysr.serial_number
    obs["system.uuid"] = sysr.uuid
    obs["system.power"] = str(sysr.power_state.value)
    obs["system.memory_gib"] = sysr.memory_summary.size_gib
    obs["system.cpus"] = sysr.processors.summary.count
    obs["system.macs"] = sorted(sysr.ethernet_interfaces.summary.keys())
    obs["system.reset_types"] = sorted(str(v.value) for v in sysr.get_allowed_reset_system_values())


def power():
    sysr.reset_system(sushy.ResetType.ON)
    sysr.refresh()
    obs["power.after_on"] = str(sysr.power_state.value)
    sysr.reset_system(sushy.ResetType.FORCE_RESTART)
    sysr.refresh()
    obs["power.after_restart"] = str(sysr.power_state.value)


def boot():
    sysr.set_system_boot_options(sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    sysr.refresh()
    obs["boot.target"] = str(sysr.boot.target.value)
    obs["boot.enabled"] = str(sysr.boot.enabled.value)
    obs["boot.mode"] = str(sysr.boot.mode.value) if sysr.boot.mode else None


def bios():
    b = sysr.bios
    obs["bios.boot_mode"] = b.attributes.get("BootMode", "<absent>")
    b.set_attributes({"WorkloadProfile": "Virtualization-MaxPerformance"})
    b.refresh()
    obs["bios.pending"] = b.pending_attributes.get("WorkloadProfile")
    obs["bios.current"] = b.attributes.get("WorkloadProfile")


def secure_boot():
    sb = sysr.secure_boot
    obs["secure_boot.before"] = sb.enabled
    sb.set_enabled(True)
    sb.refresh()
    obs["secure_boot.enabled"] = sb.enabled
    obs["secure_boot.current_before_reset"] = str(sb.current_boot.value)
    sysr.reset_system(sushy.ResetType.FORCE_RESTART)
    sb.refresh()
    obs["secure_boot.current_after_reset"] = str(sb.current_boot.value)
    sb.reset_keys(sushy.SecureBootResetKeysType.RESET_ALL_KEYS_TO_DEFAULT)
    sb.set_enabled(False)
    sb.refresh()
    obs["secure_boot.after_disable"] = sb.enabled


def virtual_media():
    mgr = root.get_manager("/redfish/v1/Managers/1/")
    obs["manager.firmware"] = mgr.firmware_version
    cd = mgr.virtual_media.get_member("/redfish/v1/Managers/1/VirtualMedia/2/")
    obs["vmedia.types"] = sorted(str(t.value) for t in cd.media_types)
    obs["vmedia.empty_image"] = cd.image
    cd.insert_media(cfg["image"], inserted=True, write_protected=True)
    cd.refresh()
    obs["vmedia.inserted"] = cd.inserted
    obs["vmedia.image"] = cd.image
    cd.eject_media()
    cd.refresh()
    obs["vmedia.after_eject"] = cd.inserted


for name, fn in [("connect", connect), ("session_service", session_service), ("update_service", update_service),
                 ("system", system), ("power", power), ("boot", boot), ("bios", bios),
                 ("secure_boot", secure_boot), ("virtual_media", virtual_media)]:
    step(name, fn)
    if name in ("connect", "system") and name + ".error" in obs:
        break
json.dump(obs, sys.stdout)
