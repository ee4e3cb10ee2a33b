package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSentinelInEveryCLIOutput: one sentinel password set as ilo_password,
// ipmi_password, [swift] password and temp_url_key, URL userinfo of the
// deploy ISO and of the image source, and a --param value, never appears in
// any CLI output or state file after a failed deploy and a script that
// copies it into every field it can; the shown forms are masked.
func TestSentinelInEveryCLIOutput(t *testing.T) {
	c := newCLI(t)
	conf := filepath.Join(t.TempDir(), "lightsout.conf")
	if err := os.WriteFile(conf, []byte("[swift]\npassword = "+sentinel+"\ntemp_url_key = "+sentinel+
		"\n[conductor]\nclean_nodes = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIGHTSOUT_CONFIG", conf)
	userinfo := "http://deployer:" + sentinel + "@127.0.0.1:1"
	c.must("node", "create", "n1", "--driver", "agent_ilo", "-i", "ilo_address=127.0.0.1", "-i", "client_port=1", "-i", "client_timeout=1",
		"-i", "ilo_username=admin", "-i", "ilo_password="+sentinel, "-i", "ipmi_password="+sentinel,
		"-i", "ilo_deploy_iso="+userinfo+"/ipa.iso")
	c.must("node", "manage", "n1")
	c.must("node", "provide", "n1")

	// A failed deploy (the iLO does not answer).
	code, _, _ := c.run("deploy", "n1", "--image-source", userinfo+"/img.raw", "--image-checksum", "sha256:"+strings.Repeat("a", 64),
		"--param", "note="+sentinel, "--json")
	if code != 1 {
		t.Fatalf("deploy against a dead iLO exited %d, want 1", code)
	}
	// The hostile script, with the sentinel as a --param value.
	dir := t.TempDir()
	script := filepath.Join(dir, "hostile.lua")
	os.WriteFile(script, []byte(`
local pw = node.driver_info.ilo_password
node:set_instance_info("x", pw)
node:set_instance_info("image_url", "http://img:" .. pw .. "@127.0.0.1/img.raw")
node:set_instance_info("nested", {a = {pw}})
node:set_internal("y", "copy " .. params.note)
node:set_property("p", pw)
node:set_driver_info("z", pw)
node:set_last_error("last error " .. pw)
run.log("info", "log " .. pw, {f = pw})
print("print", pw, node.driver_info.ipmi_password)
run.step("step " .. pw, function() end)
run.artifact("kind" .. pw, "http://127.0.0.1/o?temp_url_sig=" .. pw .. "&temp_url_expires=1")
error("outer " .. pw)
`), 0o644)
	c.run("run", script, "--node", "n1", "--param", "note="+sentinel, "--log-level", "debug")
	c.run("run", script, "--node", "n1", "--param", "note="+sentinel, "--json", "--log-format", "json")
	// Malformed arguments holding the sentinel are refused without echo.
	for _, args := range [][]string{
		{"run", "hello", "--param", sentinel},
		{"node", "create", "x", "--driver", "agent_ilo", "-i", sentinel},
		{"node", "create", "x", "--driver", "agent_ilo", "-p", sentinel},
		{"node", "set", "n1", "--instance-info", sentinel},
	} {
		if code, _, errOut := c.run(args...); code != 2 || !strings.Contains(errOut, "not shown") {
			t.Errorf("lightsout %s: exit %d %q", args[0], code, errOut)
		}
	}
	for _, args := range [][]string{
		{"node", "show", "n1"}, {"node", "show", "n1", "--json"}, {"node", "list"}, {"node", "list", "--json"},
		{"runs", "list"}, {"runs", "list", "--json"}, {"config", "show"},
	} {
		c.must(args...)
	}
	for _, id := range []string{"1", "2", "3"} {
		c.must("runs", "show", id)
		c.must("runs", "show", id, "--json")
		c.run("runs", "log", id)
	}
	out := c.allOut.Bytes()
	if i := bytes.Index(out, []byte(sentinel)); i >= 0 {
		t.Fatalf("sentinel in CLI output: …%s…", out[max(0, i-200):min(len(out), i+40)])
	}
	// The values are shown masked, not dropped.
	var n struct {
		InstanceInfo       map[string]any `json:"instance_info"`
		DriverInfo         map[string]any `json:"driver_info"`
		DriverInternalInfo map[string]any `json:"driver_internal_info"`
		LastError          string         `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(c.must("node", "show", "n1", "--json")), &n); err != nil {
		t.Fatal(err)
	}
	if n.InstanceInfo["x"] != "******" || n.InstanceInfo["image_source"] != "http://deployer:******@127.0.0.1:1/img.raw" ||
		n.DriverInfo["ilo_deploy_iso"] != "http://deployer:******@127.0.0.1:1/ipa.iso" || n.DriverInternalInfo["y"] != "copy ******" ||
		n.LastError != "last error ******" {
		t.Errorf("node show: %+v", n)
	}
	var show struct {
		Params    map[string]string `json:"params"`
		Artifacts []struct{ Kind, Location string }
	}
	if err := json.Unmarshal([]byte(c.must("runs", "show", "2", "--json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.Params["note"] != "******" || len(show.Artifacts) != 1 || show.Artifacts[0].Kind != "kind******" ||
		show.Artifacts[0].Location != "http://127.0.0.1/o?temp_url_sig=******&temp_url_expires=1" {
		t.Errorf("runs show: %+v", show)
	}
	if err := filepath.Walk(c.state, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(sentinel)) {
			t.Errorf("%s holds the sentinel", p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
