package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

// TestLuaLifecycleOnEveryGeneration is issue 3's acceptance check: a Lua
// script run with `lightsout run` power-cycles, changes the pending boot
// mode, toggles secure boot and inserts/ejects virtual media on each
// generation, and `runs show` lists every call.
func TestLuaLifecycleOnEveryGeneration(t *testing.T) {
	c := newCLI(t)
	specs, err := sim.ParseNodes("gen8=1,gen9=1,gen10=1,gen11=1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.Options{Nodes: specs, DiskSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2048")
		if r.Method == http.MethodGet {
			w.Write(make([]byte, 2048))
		}
	}))
	defer img.Close()
	inv := filepath.Join(t.TempDir(), "fleet.json")
	if err := s.WriteInventory(inv); err != nil {
		t.Fatal(err)
	}
	c.must("node", "import", inv)
	script := filepath.Join("..", "..", "testdata", "scripts", "ilo_lifecycle.lua")
	out := c.must("run", script, "--all", "--param", "image="+img.URL+"/boot.iso", "--json")
	var results []struct {
		ID     int64
		Node   string
		Status string
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 4 {
		t.Fatalf("results: %v\n%s", err, out)
	}
	want := []string{"ilo.set_host_power", "ilo.get_host_power_status", "ilo.set_pending_boot_mode",
		"ilo.insert_virtual_media", "ilo.get_vm_status", "ilo.eject_virtual_media"}
	for _, r := range results {
		var show struct {
			Events []struct{ Kind, Name string }
		}
		if err := json.Unmarshal([]byte(c.must("runs", "show", itoa(int(r.ID)), "--json")), &show); err != nil {
			t.Fatal(err)
		}
		calls := map[string]int{}
		for _, e := range show.Events {
			if e.Kind == "call" {
				calls[e.Name]++
			}
		}
		for _, w := range want {
			if calls[w] == 0 {
				t.Errorf("%s: runs show lacks call %s (has %v)", r.Node, w, calls)
			}
		}
		if r.Node != "gen8-0" && calls["ilo.set_secure_boot_mode"] < 2 {
			t.Errorf("%s: secure boot not toggled: %v", r.Node, calls)
		}
		if r.Node != "gen8-0" && calls["ilo.reset_server"] == 0 {
			t.Errorf("%s: no reset: %v", r.Node, calls)
		}
		text := c.must("runs", "show", itoa(int(r.ID)))
		if !strings.Contains(text, "→ call ilo.insert_virtual_media ok") {
			t.Errorf("%s: runs show text lacks the media call:\n%s", r.Node, text)
		}
		srv, _ := s.ServerByName(r.Node)
		if st := srv.State(); st.Power != "OFF" {
			t.Errorf("%s: power %s after the run", r.Node, st.Power)
		}
		if strings.Contains(text, srv.Password()) {
			t.Fatalf("%s: password in runs show", r.Node)
		}
	}
}
