package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildBinary builds the lightsout binary into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lightsout")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestValidationExitsTwo runs the real binary: every bad config value and
// CLI number exits 2 naming the option (file and line for config) and the
// fix, before anything changes.
func TestValidationExitsTwo(t *testing.T) {
	bin := buildBinary(t)
	c := newCLI(t)
	c.createNode("n1")
	c.must("node", "manage", "n1")
	dir := t.TempDir()
	exe := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), append([]string{"XDG_STATE_HOME=" + c.state, "LIGHTSOUT_CONFIG="}, env...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}

	configs := []struct {
		name, text string
		want       []string
	}{
		{"max_parallel 0", "[lightsout]\nmax_parallel = 0\n", []string{":2: [lightsout] max_parallel = \"0\" is invalid: want an integer from 1 to 10000"}},
		{"max_parallel -3", "[lightsout]\nmax_parallel = -3\n", []string{":2: [lightsout] max_parallel = \"-3\"", "from 1 to 10000"}},
		{"client_timeout -5", "# iLO\n[ilo]\nclient_timeout=-5\n", []string{":3: [ilo] client_timeout = \"-5\"", "seconds from 1 to 86400"}},
		{"run_timeout -1h", "[lightsout]\nrun_timeout=-1h\n", []string{":2: [lightsout] run_timeout = \"-1h\"", "a duration from 1s"}},
		{"clean priority high", "[ilo]\nclean_priority_reset_ilo=high\n", []string{":2: [ilo] clean_priority_reset_ilo = \"high\"", "an integer >= 0 (0 disables the step)"}},
		{"publish_digest md5", "[lightsout]\npublish_digest = md5\n", []string{"[lightsout] publish_digest = \"md5\"", "one of sha1, sha256, sha512"}},
		{"all at once, secret masked", "[lightsout]\nmax_parallel = 0\n[swift]\npassword = " + sentinel + "\x01\n", []string{"2 invalid options", "max_parallel", "[swift] password = \"******\""}},
	}
	for _, tt := range configs {
		conf := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".conf")
		if err := os.WriteFile(conf, []byte(tt.text), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"config", "show"}, {"--config", conf, "node", "list"}, {"run", "hello", "--node", "n1"}} {
			t.Run(tt.name+"/"+args[0]+"_"+args[len(args)-1], func(t *testing.T) {
				code, out := exe([]string{"LIGHTSOUT_CONFIG=" + conf}, args...)
				if code != 2 {
					t.Fatalf("exit %d, want 2\n%s", code, out)
				}
				for _, w := range append(tt.want, conf) {
					if !strings.Contains(out, w) {
						t.Errorf("output lacks %q:\n%s", w, out)
					}
				}
				if strings.Contains(out, sentinel) {
					t.Errorf("secret echoed:\n%s", out)
				}
			})
		}
	}

	imp := func(doc string) string {
		p := filepath.Join(t.TempDir(), "nodes.json")
		os.WriteFile(p, []byte(doc), 0o600)
		return p
	}
	c.must("node", "set", "n1", "--port", "52:54:00:00:00:01")
	flags := []struct {
		name string
		args []string
		want string
	}{
		{"--timeout -5s", []string{"run", "hello", "--node", "n1", "--timeout", "-5s"}, "--timeout -5s: must be a duration of at least 1ms"},
		{"--parallel -1", []string{"run", "hello", "--node", "n1", "--parallel", "-1"}, "--parallel -1: must be an integer from 1 to 10000"},
		{"--parallel 0", []string{"inspect", "n1", "--parallel", "0"}, "--parallel 0: must be an integer from 1 to 10000"},
		{"--limit -1", []string{"runs", "list", "--limit", "-1"}, "--limit -1: must be an integer"},
		{"watch --max-attempts 0", []string{"watch", dir, "--max-attempts", "0"}, "--max-attempts 0"},
		{"unknown clean step", []string{"clean", "n1", "--steps", `[{"interface": "deploy", "step": "erase_everything"}]`},
			"clean step #1 deploy.erase_everything is not known; known steps: "},
		{"duplicate key in --steps", []string{"clean", "n1", "--steps", `[{"interface": "deploy", "step": "erase_devices", "step": "x"}]`},
			`duplicate key "step"`},
		{"invalid UTF-8 name", []string{"node", "create", "n\xff2", "--driver", "agent_ilo", "-i", "ilo_address=a", "-i", "ilo_username=u", "-i", "ilo_password=p"},
			"is not valid UTF-8 text"},
		{"import an object", []string{"node", "import", imp(`{"name": "n2"}`)}, `key "name" holds a string, not a node object`},
		{"import unknown field", []string{"node", "import", imp(`[{"name": "n2", "colour": "red"}]`)}, `entry 1 (n2): unknown field(s) "colour"`},
		{"import a taken MAC", []string{"node", "import", imp(`[{"name": "n2", "driver_info": {"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}, "ports": [{"address": "52:54:00:00:00:01"}]}]`)},
			"port 52:54:00:00:00:01 already belongs to node n1: remove it from n1 first"},
	}
	for _, tt := range flags {
		t.Run(tt.name, func(t *testing.T) {
			code, out := exe(nil, tt.args...)
			if code != 2 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d (want 2), output lacks %q:\n%s", code, tt.want, out)
			}
		})
	}
	// Nothing changed: no run, no manual steps recorded, n1 still manageable.
	var n map[string]any
	json.Unmarshal([]byte(c.must("node", "show", "n1", "--json")), &n)
	if n["provision_state"] != "manageable" || n["driver_internal_info"].(map[string]any)["manual_clean_steps"] != nil {
		t.Fatalf("a refused command changed the node: %v", n)
	}
	if out := c.must("runs", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a refused command ran: %s", out)
	}
}

// TestHugeValuesBounded: node show (text and --json) of a node whose
// instance_info is very deep and very large stays bounded and valid.
func TestHugeValuesBounded(t *testing.T) {
	c := newCLI(t)
	deep := strings.Repeat(`{"a":`, 900) + `"bottom"` + strings.Repeat(`}`, 900)
	big := strings.Repeat("x", 4<<20)
	doc := `[{"name": "n1", "driver_info": {"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"},
		"instance_info": {"deep": ` + deep + `, "big": "` + big + `"}}]`
	p := filepath.Join(t.TempDir(), "nodes.json")
	os.WriteFile(p, []byte(doc), 0o600)
	c.must("node", "import", p)
	text := c.must("node", "show", "n1")
	if len(text) > 64<<10 || !strings.Contains(text, "<truncated>") || !strings.Contains(text, "instance_info") {
		t.Fatalf("node show: %d bytes, truncated note: %v", len(text), strings.Contains(text, "<truncated>"))
	}
	js := c.must("node", "show", "n1", "--json")
	var n map[string]any
	if err := json.Unmarshal([]byte(js), &n); err != nil {
		t.Fatalf("node show --json is not valid JSON: %v", err)
	}
	depth, v := 0, n["instance_info"].(map[string]any)["deep"]
	for {
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		depth, v = depth+1, m["a"]
	}
	if depth > jsonDepth || !strings.HasPrefix(v.(string), "<truncated>") {
		t.Fatalf("--json depth %d ends in %v", depth, v)
	}
	if len(js) > 2<<20 {
		t.Fatalf("--json is %d bytes", len(js))
	}
}
