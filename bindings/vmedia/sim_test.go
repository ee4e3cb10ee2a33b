package vmedia_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo"
	"github.com/lightsout/lightsout/bindings/vmedia"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/sim"
)

// fetchLog records what the simulated iLOs fetched.
type fetchLog struct {
	mu   sync.Mutex
	reqs []string
	next http.RoundTripper
}

func (f *fetchLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.reqs = append(f.reqs, r.Method+" "+r.URL.Path+" "+resp.Status)
	}
	return resp, err
}

func (f *fetchLog) saw(path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs {
		if strings.Contains(r, " "+path+" 2") {
			return true
		}
	}
	return false
}

// TestSimFetchesPublishedMedia drives the iLO simulator through the real
// ilo module (RIBCL on Gen8, Redfish on Gen10): setup_for_boot publishes the
// floppy and ISO in the built-in web store, the simulated iLO fetches both
// URLs, and cleanup ejects and unpublishes them.
func TestSimFetchesPublishedMedia(t *testing.T) {
	log := &fetchLog{next: http.DefaultTransport}
	s, err := sim.New(sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 1}},
		HTTPClient: &http.Client{Transport: log}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	iso := filepath.Join(t.TempDir(), "deploy.iso")
	os.WriteFile(iso, []byte("deploy iso bytes"), 0o644)
	vm := vmedia.NewModule()
	defer vm.Close()
	im := ilo.NewModule()
	state := t.TempDir()

	for i, inv := range s.Inventory() {
		srv := s.Server(i)
		t.Run(inv.Name, func(t *testing.T) {
			uuid := "00000000-0000-4000-8000-00000000000" + string(rune('0'+i))
			run := moduletest.NewRun(context.Background(), &moduletest.Node{ID: uuid, NodeName: inv.Name, Info: inv.DriverInfo})
			run.Cfg = moduletest.MapConfig{"lightsout.state_dir": state}
			run.Allow(filepath.Join(state, "work"), filepath.Dir(iso))
			L := moduletest.Open(run, im, vm)
			defer L.Close()
			L.SetGlobal("iso", lua.LString(iso))
			if err := L.DoString(`
				local ilo, vmedia = require("ilo"), require("vmedia")
				bmc = ilo.connect()
				res = vmedia.setup_for_boot(bmc, iso, { ["ipa-api-url"] = "http://127.0.0.1:6385", boot_method = "vmedia" })
			`); err != nil {
				t.Fatal(err)
			}
			res := L.GetGlobal("res").(*lua.LTable)
			floppyURL := lua.LVAsString(res.RawGetString("floppy_url"))
			isoURL := lua.LVAsString(res.RawGetString("iso_url"))
			st := srv.State()
			if m := st.Media["FLOPPY"]; !m.Inserted || m.URL != floppyURL {
				t.Fatalf("sim FLOPPY %+v, want %s", m, floppyURL)
			}
			if m := st.Media["CDROM"]; !m.Inserted || m.URL != isoURL {
				t.Fatalf("sim CDROM %+v, want %s", m, isoURL)
			}
			if !strings.EqualFold(st.OneTimeBoot, "CDROM") {
				t.Fatalf("one-time boot %q", st.OneTimeBoot)
			}
			for _, p := range []string{"/image-" + uuid, "/boot-" + uuid + ".iso"} {
				if !log.saw(p) {
					t.Fatalf("the simulated iLO never fetched %s: %v", p, log.reqs)
				}
			}
			if err := L.DoString(`
				local r = require("vmedia").cleanup(nil, bmc)
				assert(#r.deleted == 2, #r.deleted)
			`); err != nil {
				t.Fatal(err)
			}
			st = srv.State()
			if st.Media["FLOPPY"].Inserted || st.Media["CDROM"].Inserted {
				t.Fatalf("media still inserted: %+v", st.Media)
			}
			// the published files are gone: the iLO now refuses the old URL
			bmc := L.GetGlobal("bmc").(*lua.LUserData).Value.(vmedia.BMC)
			if err := bmc.InsertVirtualMedia(context.Background(), isoURL, "CDROM"); err == nil {
				t.Fatal("iLO accepted an unpublished URL")
			}
			calls := strings.Join(run.Calls(), ",")
			for _, want := range []string{"vmedia.setup_for_boot", "ilo.insert_virtual_media", "ilo.set_one_time_boot", "ilo.eject_virtual_media", "vmedia.cleanup"} {
				if !strings.Contains(calls, want) {
					t.Fatalf("calls %s lack %s", calls, want)
				}
			}
		})
	}
}
