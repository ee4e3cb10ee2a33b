package ilo

import (
	"fmt"
	"testing"

	"github.com/lightsout/lightsout/sim/simtest"
)

// deployBMC is the BMC part of a virtual-media deploy, as the deploy
// playbook makes it: power off, boot mode and secure boot, insert the
// ramdisk, one-time boot from CD, power on, then eject and boot from disk.
const deployBMC = `
local b = require("ilo").connect()
b:get_host_power_status()
b:set_host_power("OFF")
if b:get_pending_boot_mode() ~= "UEFI" then b:set_pending_boot_mode("UEFI") end
b:set_secure_boot_mode(true)
b:eject_virtual_media("CDROM")
b:insert_virtual_media(IMAGE, "CDROM")
b:set_vm_status("CDROM", "BOOT_ONCE")
b:set_one_time_boot("CDROM")
b:set_host_power("ON")
b:get_host_power_status()
b:eject_virtual_media("CDROM")
b:update_persistent_boot({"HDD"})
b:reset_server()
`

// BenchmarkDeployBMCPart reports the HTTP requests and Redfish logins of
// a deploy's BMC part on one node (a fresh node: the probe runs), per
// UEFI generation.
//
//	go test ./bindings/ilo -run '^$' -bench DeployBMCPart -benchtime 20x
func BenchmarkDeployBMCPart(b *testing.B) {
	for _, gen := range []int{10, 11, 12} {
		b.Run(fmt.Sprintf("gen%d", gen), func(b *testing.B) {
			s, srv := simtest.ILO(b, gen, simtest.WithBootModes("UEFI_ONLY"))
			img := simtest.ImageServer(b) + "/boot.iso"
			m := NewModule()
			defer m.Close()
			var reqs int64
			logins := 0
			for b.Loop() {
				node := newNode(simtest.DriverInfo(s, 0))
				r0 := srv.Requests()
				run, err := runLua(b, m, node, "IMAGE = '"+img+"'\n"+deployBMC)
				if err != nil {
					b.Fatal(err)
				}
				reqs += srv.Requests() - r0
				logins += countEvents(run, "ilo.session_login") + countEvents(run, "ilo.session_relogin")
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
			b.ReportMetric(float64(logins)/float64(b.N), "logins/op")
		})
	}
}
