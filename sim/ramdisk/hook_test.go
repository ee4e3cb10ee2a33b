package ramdisk_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// macNodes maps every MAC of one simulated server to the node.
type macNodes struct{ macs []string }

func (m macNodes) NodeByUUID(_ context.Context, u string) (agentapi.Node, error) {
	if u == nodeUUID {
		return agentapi.Node{UUID: nodeUUID}, nil
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

func (m macNodes) NodeByMACs(_ context.Context, macs []string) (agentapi.Node, error) {
	for _, a := range macs {
		for _, b := range m.macs {
			if agentapi.NormalizeMAC(a) == agentapi.NormalizeMAC(b) {
				return agentapi.Node{UUID: nodeUUID}, nil
			}
		}
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

// TestSimulatedServerBoot boots a simulated Gen10 from virtual media with
// the ramdisk as its boot hook: the image lands on the server's virtual
// disk and standby.power_off powers the simulated server off. A later boot
// from the disk starts no agent.
func TestSimulatedServerBoot(t *testing.T) {
	rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: 50 * time.Millisecond, LookupInterval: 10 * time.Millisecond, WorkDir: t.TempDir()})
	defer rd.Close()
	s, err := sim.New(sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen10, Count: 1}}, DiskSize: diskSize, BootHook: rd.Hook()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rd.UseSim(s)
	srv := s.Server(0)

	hw := srv.Hardware()
	api := agentapi.New(macNodes{hw.MACs()}, agentapi.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := api.Listen(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	tok, _ := api.NewToken(nodeUUID)

	files := newFileServer(t)
	isoURL := files.put("deploy.iso", makeISO(t, "nofb boot_method=vmedia"))
	floppyURL := files.put("floppy", makeFloppy(t, map[string]string{"ipa-api-url": api.URL(), "ipa-agent-token": tok, "boot_method": "vmedia"}))
	img := randomBytes(t, 1<<20)
	imgURL := files.put("img.raw", img)

	srv.Update(func(st *sim.State) {
		st.Media["CDROM"] = sim.Media{URL: isoURL, Inserted: true, BootOption: "CONNECT", WriteProtect: true}
		st.Media["FLOPPY"] = sim.Media{URL: floppyURL, Inserted: true, BootOption: "CONNECT", WriteProtect: true}
		st.OneTimeBoot = "CDROM"
		st.PersistentBoot = []string{"HDD", "NETWORK"}
	})
	srv.PowerOn()
	url := waitAgent(t, api, 20*time.Second)
	if con := string(srv.ConsoleBacklog()); !strings.Contains(con, "ironic-python-agent[INFO]: ramdisk agent started") {
		t.Errorf("the ramdisk's log is not on the serial console: %q", con)
	}

	c := &agent.Client{}
	res := runWait(t, c, url, tok, "standby.prepare_image", map[string]any{"image_info": map[string]any{
		"id": "img", "urls": []any{imgURL}, "checksum": md5hex(img), "disk_format": "raw"}})
	if res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("prepare_image: %+v %s", res, res.ErrorMessage())
	}
	diskHas(t, srv.DiskPath(), img, diskSize)

	if _, err := c.Run(context.Background(), url, tok, "standby.power_off", map[string]any{}, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.State().Power != "OFF" || rd.Agent(srv.Name()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("power %s, agent %v after standby.power_off", srv.State().Power, rd.Agent(srv.Name()))
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Next boot is from the disk (the one-time CDROM was consumed, media
	// still inserted): the ramdisk does not start.
	srv.PowerOn()
	ev, ok := srv.LastBoot()
	if !ok || ev.BootDevice != "HDD" || ev.Media["CDROM"] != isoURL {
		t.Fatalf("second boot = %+v", ev)
	}
	if err := rd.Boot(context.Background(), ramdisk.BootEvent(ev)); !errors.Is(err, ramdisk.ErrNotRamdisk) {
		t.Fatalf("disk boot: %v", err)
	}
	diskHas(t, srv.DiskPath(), img, diskSize)
}
