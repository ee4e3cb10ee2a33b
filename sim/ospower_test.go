package sim

import (
	"context"
	"testing"
)

// TestOSPowerAndGraceful: a machine backend's OS powers off or resets only
// the boot it belongs to (a late exit after an iLO reset changes nothing);
// a graceful shutdown taken by Options.GracefulShutdown leaves the server
// on, one refused powers it off; Options.DriverInfo lands in the inventory.
func TestOSPowerAndGraceful(t *testing.T) {
	ctxs := make(chan context.Context, 8)
	take := true
	s, err := New(Options{Nodes: []NodeSpec{{Generation: Gen10, Count: 1}}, DiskSize: 1 << 20,
		BootHook:         func(ctx context.Context, ev BootEvent) { ctxs <- ctx; <-ctx.Done() }, // a running OS
		GracefulShutdown: func(server string) bool { return take },
		DriverInfo:       func(server string) map[string]string { return map[string]string{"kernel_append_params": "x " + server} }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := s.Server(0)
	if got := s.Inventory()[0].DriverInfo["kernel_append_params"]; got != "x gen10-0" {
		t.Fatalf("driver_info.kernel_append_params %v", got)
	}
	srv.PowerOn()
	first := <-ctxs
	srv.Reset() // the iLO resets: the first boot is over
	second := <-ctxs
	srv.OSPowerOff(first)
	if st := srv.State(); st.Power != "ON" || st.BootCount != 2 {
		t.Fatalf("a stale boot's power off changed the server: %s, boots %d", st.Power, st.BootCount)
	}
	srv.OSReset(second) // the guest reboots
	third := <-ctxs
	if st := srv.State(); st.Power != "ON" || st.BootCount != 3 || second.Err() == nil {
		t.Fatalf("after the guest reboot: %s, boots %d, previous boot cancelled %v", st.Power, st.BootCount, second.Err() != nil)
	}
	srv.PowerOff()
	if third.Err() == nil {
		t.Fatal("power off did not end the boot")
	}
	srv.PowerOn()
	fourth := <-ctxs
	// graceful shutdown taken by the OS: still on
	if err := srv.systemReset("PushPowerButton"); err != nil {
		t.Fatal(err)
	}
	if srv.State().Power != "ON" || fourth.Err() != nil {
		t.Fatal("a graceful shutdown taken by the OS powered the server off")
	}
	take = false
	if err := srv.systemReset("GracefulShutdown"); err != nil {
		t.Fatal(err)
	}
	if srv.State().Power != "OFF" || fourth.Err() == nil {
		t.Fatal("a graceful shutdown refused by the backend did not power off")
	}
}
