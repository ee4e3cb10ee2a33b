package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for the database dump

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// hostileScript copies the password into every field a script can reach.
const hostileScript = `
local pw = node.driver_info.ilo_password
assert(pw and #pw > 8, "the script sees the real password")
local ipmi, p = node.driver_info.ipmi_password, params.note
node:set_instance_info("x", pw)
node:set_instance_info("image_url", "http://img:" .. pw .. "@127.0.0.1/img.raw")
node:set_instance_info("nested", {a = {pw, {b = "copy " .. pw}}})
node:set_internal("y", pw)
node:set_internal("t", {pw})
node:set_property("p", pw)
node:set_driver_info("z", pw)
node:set_last_error("last error " .. pw)
node:set_maintenance(true, "reason " .. pw)
local ok = pcall(function() node:set_instance_info("k" .. pw, "v") end)
assert(not ok, "a key holding the password must be refused")
run.log("info", "log " .. pw, {f = pw, [pw] = "k", nested = {pw}})
run.log("debug", ipmi .. " " .. p)
print("print", pw, ipmi, p, config.swift.password, config.swift.temp_url_key)
run.step("step " .. pw, function() run.log("warn", "in step " .. pw) end)
pcall(run.step, "failing " .. pw, function() error("inner " .. pw) end)
run.artifact("kind" .. pw, "http://127.0.0.1/o?temp_url_sig=" .. pw .. "&temp_url_expires=1")
run.artifact("plain", "http://127.0.0.1/o?x=" .. pw)
error("outer " .. pw)
`

// TestSentinelSecretFoundNowhere is issue 9's secrets acceptance check: one
// sentinel password, set as ilo_password (the simulated iLOs' password),
// ipmi_password, [swift] password and temp_url_key, URL userinfo of the
// deploy ISO and of the image source, and a --param value, is found nowhere
// in the state dir (database, WAL, every other file), a dump of every table,
// the logs, stdout, the results or the floppies the servers booted with,
// after a deploy, a failed deploy and a script that copies it everywhere.
func TestSentinelSecretFoundNowhere(t *testing.T) {
	const sentinel = "Snt1nel-Qx7v-42"
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 2), password: sentinel})

	// An HTTP server that demands the sentinel as basic-auth password.
	img, data := testImage(t, t.TempDir(), 1<<20+512)
	var mu sync.Mutex
	authorized := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != sentinel {
			http.Error(w, "401 need credentials", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		authorized[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/image.raw":
			http.ServeFile(w, r, img)
		case "/ipa.iso":
			http.ServeFile(w, r, f.deployISO)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	base := strings.Replace(srv.URL, "http://", "http://deployer:"+sentinel+"@", 1)

	// Config outside the state dir (it holds the Swift credentials by design).
	stateDir, scripts := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(scripts, "hostile.lua"), []byte(hostileScript), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "lightsout.conf")
	text := "[lightsout]\nstate_dir = " + stateDir + "\n" + mergeINI(baseConfig,
		"[swift]\npassword = "+sentinel+"\ntemp_url_key = "+sentinel+"\n")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr testenv.SyncBuffer
	a, err := app.Open(context.Background(), app.Options{ConfigPath: conf, ScriptDirs: []string{scripts},
		Stdout: &stdout, Stderr: &stderr, LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			a.Close()
		}
	}()
	e := &env{t: t, app: a, fleet: f, dir: stateDir}
	ctx := context.Background()
	inv := filepath.Join(t.TempDir(), "inventory.json") // holds the password: not in the state dir
	if err := f.sim.WriteInventory(inv); err != nil {
		t.Fatal(err)
	}
	ns, err := a.ImportNodes(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if _, err := a.UpdateNode(ctx, n.Name, app.NodeChange{DriverInfo: map[string]any{
			"ipmi_password": sentinel, "ilo_deploy_iso": base + "/ipa.iso"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Manage(ctx, n.Name); err != nil {
			t.Fatalf("manage %s: %v", n.Name, err)
		}
		e.makeAvailable(n.Name)
	}
	params := map[string]string{"note": "param " + sentinel, "admin_password": sentinel}
	var results []runtime.Result

	// A deploy that succeeds, and one that fails (the image is not there).
	sum := sha256.Sum256(data)
	for name, source := range map[string]string{"gen10-0": base + "/image.raw", "gen10-1": base + "/missing.raw"} {
		if _, err := a.PrepareDeploy(ctx, name, app.DeployOptions{ImageSource: source, ImageChecksum: "sha256:" + hex.EncodeToString(sum[:])}); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
	}
	res := e.runs(app.ScriptDeploy, []string{"gen10-0", "gen10-1"}, params)
	e.mustSucceed(res["gen10-0"])
	if res["gen10-1"].Succeeded() {
		t.Fatal("the deploy of a missing image succeeded")
	}
	if n := e.node("gen10-1"); n.ProvisionState != states.DeployFailed || n.LastError == "" {
		t.Errorf("gen10-1: state %s last_error %q after a failed deploy", n.ProvisionState, n.LastError)
	}
	results = append(results, res["gen10-0"], res["gen10-1"])
	mu.Lock()
	if authorized["/image.raw"] == 0 || authorized["/ipa.iso"] == 0 {
		t.Errorf("the URL credentials were not used: %v", authorized)
	}
	mu.Unlock()

	// The hostile script.
	r, err := a.Engine.Run(ctx, runtime.RunRequest{Script: "hostile", Node: "gen10-0", Params: params, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.Succeeded() || !strings.Contains(r.Error, "outer ******") {
		t.Fatalf("hostile run: %s %q\n%s", r.Status, r.Error, e.timeline(r.RunID))
	}
	results = append(results, r)
	// Stored values are kept (encrypted at rest), not lost.
	n := e.node("gen10-0")
	if n.InstanceInfo["x"] != sentinel || n.DriverInternalInfo["y"] != sentinel || n.Properties["p"] != sentinel ||
		n.InstanceInfo["image_url"] != "http://img:"+sentinel+"@127.0.0.1/img.raw" || n.InstanceInfo["image_source"] != base+"/image.raw" {
		t.Errorf("values a run stored were not kept: instance_info %v internal %v", n.InstanceInfo, n.DriverInternalInfo)
	}
	if !bytes.Contains(stdout.Bytes(), []byte("print\t******")) {
		t.Errorf("print output not redacted as expected:\n%s", stdout.Bytes())
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	hits := func(where string, b []byte) {
		t.Helper()
		if i := bytes.Index(b, []byte(sentinel)); i >= 0 {
			lo, hi := max(0, i-60), min(len(b), i+len(sentinel)+20)
			t.Errorf("%s holds the sentinel: …%q…", where, b[lo:hi])
		}
	}
	// Every file of the state dir, key files and published files included.
	files := 0
	if err := filepath.Walk(stateDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		hits(p, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if files < 2 {
		t.Fatalf("only %d state files checked", files)
	}
	hits("the database dump", dumpDatabase(t, filepath.Join(stateDir, "lightsout.db")))
	hits("stdout", stdout.Bytes())
	hits("the logs", stderr.Bytes())
	out, _ := json.Marshal(results)
	hits("the results", out)
	fl := f.bootFloppies()
	if len(fl) == 0 {
		t.Error("no boot floppy was captured")
	}
	for i, b := range fl {
		hits(fmt.Sprintf("boot floppy %d", i), b)
	}
	if !bytes.Contains(stderr.Bytes(), []byte("******")) {
		t.Error("the logs show no masked value: the test did not exercise redaction")
	}
}

// dumpDatabase renders every row of every table, like `sqlite3 .dump`.
func dumpDatabase(t *testing.T, path string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var out bytes.Buffer
	total := 0
	for _, tb := range tables {
		rs, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "%s:", tb)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&out, " %v", v)
			}
			out.WriteByte('\n')
			total++
		}
		rs.Close()
	}
	if total == 0 || !bytes.Contains(out.Bytes(), []byte("hostile")) {
		t.Fatalf("the dump missed rows (%d rows)", total)
	}
	return out.Bytes()
}
