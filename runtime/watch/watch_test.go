package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
)

// TestManyJobsManyNodes drops 200 jobs at once on 50 nodes (4 jobs per
// node, so jobs wait for node locks); every job ends in done/ and its
// result names runs that the store records with the same outcome.
func TestManyJobsManyNodes(t *testing.T) {
	e := newEnv(t, 50)
	obs := newCollect()
	for i := range 200 {
		e.drop(fmt.Sprintf("job-%03d.json", i), fmt.Sprintf(`{"action":"run","script":"trivial","nodes":["n%02d"]}`, i%50))
	}
	e.start(Options{Parallel: 16, Observer: obs})
	waitFor(t, 60*time.Second, "200 jobs in done/", func() bool { return len(e.jobs(Done)) == 200 })
	if f := e.jobs(Failed); len(f) != 0 {
		t.Fatalf("failed jobs: %v", f)
	}
	ctx := context.Background()
	runs, err := e.a.Store.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]*store.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	seen := map[int64]bool{}
	for i := range 200 {
		name := fmt.Sprintf("job-%03d.json", i)
		r := e.result(Done, name)
		if r.Status != store.JobDone || len(r.Nodes) != 1 || len(r.RunIDs) != 1 || r.Attempts != 1 || r.Script != "trivial" {
			t.Fatalf("%s: %+v", name, r)
		}
		run := byID[r.RunIDs[0]]
		if run == nil || run.Status != store.StatusSucceeded || run.NodeName != fmt.Sprintf("n%02d", i%50) || run.Script != "trivial" ||
			r.Nodes[0].Status != run.Status || seen[run.ID] {
			t.Fatalf("%s: result %+v does not match run %+v", name, r, run)
		}
		seen[run.ID] = true
	}
	if len(runs) != 200 {
		t.Fatalf("%d runs recorded, want 200", len(runs))
	}
	checkClean(t, e.a.Store)
	waitFor(t, 5*time.Second, "observer counts", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.claimed == 200 && obs.finished[store.JobDone] == 200 && obs.runs[store.StatusSucceeded] == 200
	})
}

// TestBadInput covers each bad input of the issue: each ends in failed/
// with a result naming the problem, and the watcher keeps running.
func TestBadInput(t *testing.T) {
	e := newEnv(t, 3) // n02: only for the state check (a locked node skips it)
	big := filepath.Join(e.dir, Incoming, "big.json")
	tests := []struct{ name, file, body, want, status string }{
		{"malformed JSON", "badjson.json", `{"action": "run", "script": "trivial",,}`, "malformed JSON: line 1, column 39", store.JobInvalid},
		{"truncated JSON", "trunc.json", `{"action": "run", "scri`, "malformed JSON: the document ends early", store.JobInvalid},
		{"malformed YAML", "bad.yaml", "action: run\n  script: [trivial\n", "malformed YAML", store.JobInvalid},
		{"not an object", "list.json", `["run"]`, "must be an object/mapping", store.JobInvalid},
		{"unknown action", "act.json", `{"action":"frobnicate","nodes":["n00"]}`, `field "action": unknown action "frobnicate": use one of inspect, deploy`, store.JobInvalid},
		{"missing action", "noact.yml", "nodes: [n00]\n", `field "action": missing`, store.JobInvalid},
		{"unknown field", "field.json", `{"action":"run","script":"trivial","nodez":["n00"]}`, `field "nodez": unknown field`, store.JobInvalid},
		{"unknown node", "node.json", `{"action":"run","script":"trivial","nodes":["n00","ghost"]}`, `field "nodes[1]": node "ghost" not found`, store.JobInvalid},
		{"script not installed", "script.json", `{"action":"run","script":"nosuch","nodes":["n00"]}`, `script "nosuch" not found`, store.JobInvalid},
		{"library is not a playbook", "lib.json", `{"action":"run","script":"util","nodes":["n00"]}`, "not a playbook", store.JobInvalid},
		{"script path refused", "path.json", `{"action":"run","script":"/tmp/evil.lua","nodes":["n00"]}`, "is a file path: jobs may only name installed", store.JobInvalid},
		{"lua file refused", "evil.lua", `print("no")`, "Lua files are not accepted as jobs", store.JobInvalid},
		{"empty file", "empty.json", "", "empty job file", store.JobInvalid},
		{"blank yaml", "blank.yaml", "\n\n", "empty job file", store.JobInvalid},
		{"bad timeout and parallel", "types.yaml", "action: run\nscript: trivial\ntimeout: soon\nparallel: 0\n", `field "parallel"`, store.JobInvalid},
		{"nested param", "param.json", `{"action":"run","script":"trivial","params":{"x":{"y":1}}}`, `field "params.x": must be a string, number or boolean`, store.JobInvalid},
		{"instance_info on inspect", "ii.json", `{"action":"clean","nodes":["n00"],"instance_info":{"a":1}}`, `field "instance_info": only for action "deploy"`, store.JobInvalid},
		{"both nodes and all", "both.json", `{"action":"run","script":"trivial","nodes":["n00"],"all":true}`, `use either "nodes" or "all"`, store.JobInvalid},
		{"verb on a node in the wrong state", "state.json", `{"action":"inspect","nodes":["n02"]}`, `field "nodes[0]": node n02 is enroll: inspect starts from manageable`, store.JobInvalid},
		{"all with no node in the state", "stateall.json", `{"action":"undeploy","all":true}`, `field "all": no node is in a state undeploy starts from`, store.JobInvalid},
		{"clean without steps", "nosteps.json", `{"action":"clean","nodes":["n00"]}`, `field "steps": missing: manual cleaning needs a step list`, store.JobInvalid},
		{"bad clean step", "badstep.json", `{"action":"clean","nodes":["n00"],"steps":[{"interface":"disk","step":"x"}]}`, `field "steps": steps[0].interface "disk"`, store.JobInvalid},
		{"duplicate key", "dupkey.json", `{"action":"run","script":"trivial","nodes":["n00"],"script":"fail"}`, `malformed JSON: line 1, column 52 ($): duplicate key "script"`, store.JobInvalid},
		{"duplicate key deep", "dupdeep.json", `{"action":"run","script":"trivial","params":{"a":"1","a":"2"}}`, `($.params): duplicate key "a"`, store.JobInvalid},
		{"duplicate key yaml", "dupyaml.yaml", "action: run\nscript: trivial\nscript: fail\n", `malformed YAML`, store.JobInvalid},
		{"invalid UTF-8", "utf8.json", "{\"action\":\"run\",\"script\":\"trivial\",\"params\":{\"x\":\"\xff\"}}", "invalid UTF-8 (byte 0xff", store.JobInvalid},
		{"invalid UTF-8 yaml", "badutf.yaml", "action: run\nscript: trivial\nparams: {x: \"\xfe\"}\n", "line 3, column 14: invalid UTF-8", store.JobInvalid},
		{"unknown clean step", "unknownstep.json", `{"action":"clean","nodes":["n00"],"steps":[{"interface":"deploy","step":"erase_everything"}]}`, `field "steps": step #1 deploy.erase_everything is not known; known steps: `, store.JobInvalid},
		{"script fails", "fails.json", `{"action":"run","script":"fail","nodes":["n00","n01"]}`, "2 of 2 runs did not succeed: n00 failed: ", store.JobFailed},
	}
	// A 100 MB file (sparse: cheap to create) is refused without being read.
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(big + ".part")
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(100 << 20)
	f.Close()
	os.Rename(big+".part", big)
	// A playbook verb whose script is not installed (the playbooks land
	// one by one; skip when all are there).
	for _, a := range actions() {
		if a.script == "" {
			continue
		}
		if _, err := e.a.Engine.Scripts().Find(a.script); err != nil {
			tests = append(tests, struct{ name, file, body, want, status string }{"playbook verb not installed", "verb.json",
				`{"action":"` + a.name + `","all":true}`, fmt.Sprintf(`action %q runs the playbook %q, which is not installed`, a.name, a.script), store.JobInvalid})
			break
		}
	}
	for _, tt := range tests {
		e.drop(tt.file, tt.body)
	}
	e.start(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, r := e.finishedIn(t, tt.file, 30*time.Second, Done, Failed)
			if sub != Failed || r.Status != tt.status || !strings.Contains(r.Error, tt.want) {
				t.Fatalf("%s in %s: status %s error %q, want %s %q", tt.file, sub, r.Status, r.Error, tt.status, tt.want)
			}
		})
	}
	sub, r := e.finished("big.json", 30*time.Second)
	if sub != Failed || !strings.Contains(r.Error, "104857600 bytes; job files are limited to 1048576") {
		t.Fatalf("big file: %s %+v", sub, r)
	}
	// Still running: a good job after all that succeeds.
	e.drop("good.json", `{"action":"run","script":"trivial","nodes":["n01"]}`)
	if sub, r := e.finished("good.json", 30*time.Second); sub != Done || r.Status != store.JobDone {
		t.Fatalf("good job after bad ones: %s %+v", sub, r)
	}
	// Secrets of nodes never reach results.
	entries, _ := os.ReadDir(filepath.Join(e.dir, Failed))
	for _, x := range entries {
		b, _ := os.ReadFile(filepath.Join(e.dir, Failed, x.Name()))
		if strings.Contains(string(b), "Sentinel-W4tch") {
			t.Fatalf("%s leaks a secret", x.Name())
		}
	}
	checkClean(t, e.a.Store)
}

// TestFilesStillBeingWritten: *.part, *.tmp and dotfiles are left alone
// until renamed; a file written in place is claimed only after it settles.
func TestFilesStillBeingWritten(t *testing.T) {
	e := newEnv(t, 1)
	in := filepath.Join(e.dir, Incoming)
	os.MkdirAll(in, 0o755)
	half := `{"action":"run","script":"trivial","nodes":["n00"]`
	for _, n := range []string{"a.json.part", "b.json.tmp", ".c.json"} {
		if err := os.WriteFile(filepath.Join(in, n), []byte(half), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Written in place, still open and growing: mtime is now.
	inPlace := filepath.Join(in, "inplace.json")
	if err := os.WriteFile(inPlace, []byte(half), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.start(Options{Settle: time.Hour})
	// A sentinel job that settled long ago is processed; when it is done,
	// the scan has seen the other files and left them alone.
	e.drop("sentinel.json", `{"action":"run","script":"trivial","nodes":["n00"]}`)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(in, "sentinel.json"), old, old)
	r.w.kick()
	if sub, _ := e.finished("sentinel.json", 30*time.Second); sub != Done {
		t.Fatalf("sentinel in %s", sub)
	}
	for _, n := range []string{"a.json.part", "b.json.tmp", ".c.json", "inplace.json"} {
		if _, err := os.Stat(filepath.Join(in, n)); err != nil {
			t.Fatalf("%s was touched while being written: %v", n, err)
		}
	}
	if st := r.w.Status(); st.Queued != 1 {
		t.Fatalf("queued = %d, want 1 (the unsettled file)", st.Queued)
	}
	// The writer finishes: complete the file, and make it old enough.
	os.WriteFile(inPlace, []byte(half+"}"), 0o644)
	os.Chtimes(inPlace, old, old)
	os.Rename(filepath.Join(in, "a.json.part"), filepath.Join(in, "a.json"))
	os.WriteFile(filepath.Join(in, "a.json"), []byte(half+"}"), 0o644)
	os.Chtimes(filepath.Join(in, "a.json"), old, old)
	r.w.kick()
	for _, n := range []string{"inplace.json", "a.json"} {
		if sub, res := e.finished(n, 30*time.Second); sub != Done {
			t.Fatalf("%s: %s %+v", n, sub, res)
		}
	}
}

// TestSettleObservedUnchanged: a file whose mtime is in the future (NFS
// clock skew) is claimed once it stayed unchanged for the settle time.
func TestSettleObservedUnchanged(t *testing.T) {
	e := newEnv(t, 1)
	e.drop("future.json", `{"action":"run","script":"trivial","nodes":["n00"]}`)
	future := time.Now().Add(24 * time.Hour)
	os.Chtimes(filepath.Join(e.dir, Incoming, "future.json"), future, future)
	e.start(Options{Settle: 200 * time.Millisecond})
	if sub, _ := e.finished("future.json", 30*time.Second); sub != Done {
		t.Fatalf("future-dated job in %s", sub)
	}
}

// TestDuplicates: the same job dropped twice runs once.
func TestDuplicates(t *testing.T) {
	e := newEnv(t, 2)
	e.start(Options{Parallel: 4})
	job := `{"id":"ticket-42","action":"run","script":"trivial","nodes":["n00"]}`
	e.drop("first.json", job)
	if sub, r := e.finished("first.json", 30*time.Second); sub != Done || r.Job != "ticket-42" {
		t.Fatalf("first: %s %+v", sub, r)
	}
	// Same id, another file: not run again.
	e.drop("again.yaml", "id: ticket-42\naction: run\nscript: trivial\nnodes: [n01]\n")
	sub, r := e.finished("again.yaml", 30*time.Second)
	if sub != Failed || r.Status != store.JobDuplicate || r.DuplicateOf != "ticket-42" || !strings.Contains(r.Error, `duplicate of job "ticket-42" (file first.json, finished done`) {
		t.Fatalf("again: %s %+v", sub, r)
	}
	// The same file (no id) dropped again after it ran: a duplicate, and
	// its result does not overwrite the first one.
	plain := `{"action":"run","script":"trivial","nodes":["n01"]}`
	e.drop("plain.json", plain)
	if sub, _ := e.finished("plain.json", 30*time.Second); sub != Done {
		t.Fatalf("plain: %s", sub)
	}
	e.drop("plain.json", plain)
	sub, r = e.finishedIn(t, "plain.json", 30*time.Second, Failed)
	if r.Status != store.JobDuplicate || !strings.Contains(r.Error, "duplicate of job \"plain.json@") {
		t.Fatalf("plain again: %s %+v", sub, r)
	}
	if first := e.result(Done, "plain.json"); first.Status != store.JobDone {
		t.Fatalf("first result overwritten: %+v", first)
	}
	// Two files with one id dropped at once: exactly one runs.
	e.drop("twin-a.json", `{"id":"twin","action":"run","script":"trivial","nodes":["n00"]}`)
	e.drop("twin-b.json", `{"id":"twin","action":"run","script":"trivial","nodes":["n01"]}`)
	_, ra := e.finished("twin-a.json", 30*time.Second)
	_, rb := e.finished("twin-b.json", 30*time.Second)
	if (ra.Status == store.JobDone) == (rb.Status == store.JobDone) || (ra.Status != store.JobDuplicate && rb.Status != store.JobDuplicate) {
		t.Fatalf("twins: %s / %s", ra.Status, rb.Status)
	}
	runs, _ := e.a.Store.ListRuns(context.Background(), store.RunFilter{})
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3", len(runs))
	}
}

// TestPollOnly processes a folder with polling only (a network mount).
func TestPollOnly(t *testing.T) {
	e := newEnv(t, 3)
	r := e.start(Options{Poll: 20 * time.Millisecond})
	waitFor(t, 10*time.Second, "poll mode", func() bool { return r.w.Status().Mode == "poll" })
	for i := range 10 {
		e.drop(fmt.Sprintf("p%d.yml", i), fmt.Sprintf("action: run\nscript: trivial\nnodes: [n%02d]\n", i%3))
	}
	waitFor(t, 30*time.Second, "10 jobs done", func() bool { return len(e.jobs(Done)) == 10 })
	if e.jobs(Failed) != nil {
		t.Fatalf("failed: %v", e.jobs(Failed))
	}
}

// TestFolderWithoutPermission: a spool path that is a file, a sub-folder
// that is a file, and (when not root) a folder without write permission
// give errors naming the path and the fix. Tests run as root in CI, where
// permissions are not enforced: the chmod case is skipped when euid == 0
// and the path-is-a-file cases stand in for it.
func TestFolderWithoutPermission(t *testing.T) {
	e := newEnv(t, 0)
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	subFile := filepath.Join(base, "spool")
	os.MkdirAll(subFile, 0o755)
	os.WriteFile(filepath.Join(subFile, "done"), []byte("x"), 0o644)
	tests := []struct {
		name, dir, want string
		skip            bool
	}{
		{"spool is a file", file, "is a file, not a directory", false},
		{"done is a file", subFile, "done exists but is not a directory: move it away", false},
		{"not writable", filepath.Join(base, "ro"), "no permission to write", os.Geteuid() == 0},
	}
	ro := filepath.Join(base, "ro", Incoming)
	os.MkdirAll(ro, 0o755)
	os.Chmod(ro, 0o555)
	defer os.Chmod(ro, 0o755)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("running as root: permissions are not enforced (covered by the path-is-a-file cases)")
			}
			_, err := New(e.a, Options{Dir: tt.dir})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A second watcher of the same folder is refused (SQLite store; with a
	// shared PostgreSQL store processes watch a folder together).
	ok := filepath.Join(base, "ok")
	w, err := New(e.a, Options{Dir: ok})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if e.a.Shared() != nil {
		w2, err := New(e.a, Options{Dir: ok})
		if err != nil {
			t.Fatalf("second watcher on a shared store: %v", err)
		}
		w2.Close()
		return
	}
	if _, err := New(e.a, Options{Dir: ok}); err == nil || !strings.Contains(err.Error(), "already watched by another lightsout process") {
		t.Fatalf("second watcher: %v", err)
	}
}

// TestIncomingBecomesUnreadable: the watcher keeps running when incoming/
// disappears under it, and resumes when it is back.
func TestIncomingVanishes(t *testing.T) {
	e := newEnv(t, 1)
	r := e.start(Options{Poll: 20 * time.Millisecond})
	waitFor(t, 10*time.Second, "first scan", func() bool { return !r.w.Status().LastScan.IsZero() })
	in := filepath.Join(e.dir, Incoming)
	os.Rename(in, in+".away")
	waitFor(t, 10*time.Second, "scan error", func() bool { return r.w.Status().LastError != "" })
	os.Rename(in+".away", in)
	e.drop("back.json", `{"action":"run","script":"trivial","nodes":["n00"]}`)
	if sub, _ := e.finished("back.json", 30*time.Second); sub != Done {
		t.Fatal(sub)
	}
	if st := r.w.Status(); st.LastError != "" {
		t.Fatalf("error not cleared: %q", st.LastError)
	}
}

// TestLockedNodeWaits: a job for a node locked by another run waits for
// the lock instead of failing.
func TestLockedNodeWaits(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	n, _ := e.a.Store.GetNode(ctx, "n00")
	other := &store.Run{Script: "x", NodeUUID: n.UUID, NodeName: n.Name, Host: "h", PID: os.Getpid()}
	if err := e.a.Store.CreateRun(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Store.LockNode(ctx, n.UUID, other.ID); err != nil {
		t.Fatal(err)
	}
	e.start(Options{})
	e.drop("wait.json", `{"action":"run","script":"trivial","nodes":["n00"]}`)
	waitFor(t, 10*time.Second, "the job's run to wait for the lock", func() bool {
		runs, _ := e.a.Store.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
		return len(runs) == 2
	})
	if len(e.jobs(Processing)) != 1 || len(e.jobs(Failed)) != 0 {
		t.Fatalf("processing %v failed %v", e.jobs(Processing), e.jobs(Failed))
	}
	e.a.Store.FinishRun(ctx, other.ID, store.StatusSucceeded, "")
	e.a.Store.UnlockNode(ctx, n.UUID, other.ID)
	if sub, r := e.finished("wait.json", 30*time.Second); sub != Done {
		t.Fatalf("%s %+v", sub, r)
	}
}

// TestDeployAppliesInstanceInfo: instance_info of a deploy job is stored
// on the node before the run.
func TestDeployAppliesInstanceInfo(t *testing.T) {
	e := newEnv(t, 1)
	e.setState("n00", "available")
	e.start(Options{})
	e.drop("deploy.yaml", "action: deploy\nnodes: [n00]\ninstance_info:\n  image_source: http://127.0.0.1/img.qcow2\n  root_gb: 10\n")
	sub, r := e.finished("deploy.yaml", 30*time.Second)
	if sub != Done || r.Script != "deploy" {
		t.Fatalf("%s %+v", sub, r)
	}
	n, _ := e.a.Store.GetNode(context.Background(), "n00")
	if n.InstanceInfo["image_source"] != "http://127.0.0.1/img.qcow2" {
		t.Fatalf("instance_info: %v", n.InstanceInfo)
	}
}

// TestCleanAndProvide: a clean job records its steps on the node and runs
// the clean playbook in manual mode; provide runs it in automated mode.
func TestCleanAndProvide(t *testing.T) {
	e := newEnv(t, 2)
	e.setState("n00", "manageable")
	e.setState("n01", "manageable")
	e.start(Options{})
	e.drop("clean.json", `{"action":"clean","nodes":["n00"],"steps":[{"interface":"deploy","step":"erase_devices","args":{"passes":2}}]}`)
	e.drop("provide.yaml", "action: provide\nnodes: [n01]\n")
	for _, n := range []string{"clean.json", "provide.yaml"} {
		sub, r := e.finished(n, 30*time.Second)
		if sub != Done || r.Script != "clean" {
			t.Fatalf("%s: %s %+v", n, sub, r)
		}
	}
	ctx := context.Background()
	for node, mode := range map[string]string{"n00": "manual", "n01": "automated"} {
		runs, _ := e.a.Store.ListRuns(ctx, store.RunFilter{Node: node})
		if len(runs) != 1 || runs[0].Params["mode"] != mode {
			t.Fatalf("%s: runs %+v", node, runs)
		}
	}
}

// TestAllowLuaJobs: with AllowLua, a dropped .lua file runs (node-less)
// and "script" may be a path relative to the folder.
func TestAllowLuaJobs(t *testing.T) {
	e := newEnv(t, 1)
	os.MkdirAll(e.dir, 0o755)
	os.WriteFile(filepath.Join(e.dir, "mine.lua"), []byte(`run.step("x", function() end)`), 0o644)
	e.start(Options{AllowLua: true})
	e.drop("adhoc.lua", `run.step("hello", function() end)`)
	e.drop("path.json", `{"action":"run","script":"mine.lua","nodes":["n00"]}`)
	for _, n := range []string{"adhoc.lua", "path.json"} {
		if sub, r := e.finished(n, 30*time.Second); sub != Done {
			t.Fatalf("%s: %s %+v", n, sub, r)
		}
	}
}

// TestGracefulShutdownRequeues: when the grace period ends, in-flight
// runs are cancelled and their jobs go back to incoming/ without using an
// attempt; the next watcher runs them.
func TestGracefulShutdownRequeues(t *testing.T) {
	e := newEnv(t, 2)
	r := e.start(Options{Grace: 50 * time.Millisecond})
	e.drop("slow.json", `{"action":"run","script":"slow","nodes":["n00","n01"],"params":{"sleep":"60"}}`)
	ctx := context.Background()
	waitFor(t, 10*time.Second, "2 slow runs", func() bool {
		runs, _ := e.a.Store.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
		return len(runs) == 2
	})
	r.stop(t)
	if got := e.jobs(Incoming); len(got) != 1 || got[0] != "slow.json" {
		t.Fatalf("incoming after shutdown: %v (processing %v)", got, e.jobs(Processing))
	}
	checkClean(t, e.a.Store)
	js, _ := e.a.Store.ListJobs(ctx, store.JobFilter{Status: []string{store.JobRequeued}})
	if len(js) != 1 || js[0].Attempts != 0 {
		t.Fatalf("requeued rows: %+v", js)
	}
	// Make the script quick and restart: the job completes with the
	// cancelled runs listed as previous runs.
	os.WriteFile(filepath.Join(e.site, "slow.lua"), []byte(`run.step("quick", function() end)`), 0o644)
	e.start(Options{})
	sub, res := e.finished("slow.json", 30*time.Second)
	if sub != Done || res.Attempts != 1 || len(res.Nodes) != 2 || len(res.Nodes[0].PreviousRunIDs) != 1 {
		t.Fatalf("%s %+v", sub, res)
	}
	prev, _ := e.a.Store.GetRun(ctx, res.Nodes[0].PreviousRunIDs[0])
	if prev.Status != store.StatusCancelled {
		t.Fatalf("previous run: %+v", prev)
	}
}

// TestReconcile builds the states a crash can leave behind and checks what
// the next watcher does with each.
func TestReconcile(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	st := e.a.Store
	proc := filepath.Join(e.dir, Processing)
	os.MkdirAll(proc, 0o755)
	put := func(name, body string) string {
		os.WriteFile(filepath.Join(proc, name), []byte(body), 0o644)
		sum, _, _, err := fingerprint(filepath.Join(proc, name), DefaultMaxSize)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	deadPID := 999999 // no such process
	run := func(node, status string) int64 {
		r := &store.Run{Script: "trivial", NodeName: node, Host: "elsewhere", PID: deadPID, Status: status}
		if err := st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if status != store.StatusRunning {
			st.FinishRun(ctx, r.ID, status, "")
		}
		return r.ID
	}
	body := func(nodes string) string {
		return `{"action":"run","script":"trivial","nodes":[` + nodes + `]}`
	}
	// 1. Claimed, died before the claim was recorded.
	put("unrecorded.json", body(`"n00"`))
	// 2. Running, one node finished, one interrupted: re-queued; only the
	// interrupted node runs again.
	sum := put("half.json", body(`"n00","n01"`))
	half := &store.Job{Name: "half.json", File: "half.json", SHA256: sum, Status: store.JobRunning, Attempts: 1, Action: "run",
		Nodes: []string{"n00", "n01"}, JobID: "half"}
	st.CreateJob(ctx, half)
	okRun, deadRun := run("n00", store.StatusSucceeded), run("n01", store.StatusInterrupted)
	st.SetJobRun(ctx, &store.JobRun{Job: half.ID, Node: "n00", RunID: okRun, Status: store.StatusRunning})
	st.SetJobRun(ctx, &store.JobRun{Job: half.ID, Node: "n01", RunID: deadRun, Status: store.StatusRunning})
	// 3. Interrupted for the last allowed time: failed.
	sum = put("tired.json", body(`"n02"`))
	tired := &store.Job{Name: "tired.json", File: "tired.json", SHA256: sum, Status: store.JobRunning, Attempts: 3, Action: "run",
		Nodes: []string{"n02"}, JobID: "tired"}
	st.CreateJob(ctx, tired)
	st.SetJobRun(ctx, &store.JobRun{Job: tired.ID, Node: "n02", RunID: run("n02", store.StatusInterrupted), Status: store.StatusRunning})
	// 4. Every run finished, died before the job was: finished from the runs.
	sum = put("allrun.json", body(`"n02"`))
	allrun := &store.Job{Name: "allrun.json", File: "allrun.json", SHA256: sum, Status: store.JobRunning, Attempts: 1, Action: "run",
		Nodes: []string{"n02"}, JobID: "allrun"}
	st.CreateJob(ctx, allrun)
	allRunID := run("n02", store.StatusSucceeded)
	st.SetJobRun(ctx, &store.JobRun{Job: allrun.ID, Node: "n02", RunID: allRunID, Status: store.StatusRunning})
	// 5. Finished and recorded, died before the move: moved with its result.
	sum = put("moved.json", body(`"n00"`))
	now := time.Now().UTC()
	moved := &store.Job{Name: "moved.json", File: "moved.json", SHA256: sum, Status: store.JobFailed, Attempts: 1,
		Result: `{"job":"moved","status":"failed","error":"recorded"}` + "\n", Final: "failed/moved.json", FinishedAt: &now}
	st.CreateJob(ctx, moved)
	// 6. Claimed in the store but the file is gone: lost.
	lost := &store.Job{Name: "gone.json", File: "gone.json", SHA256: "x", Status: store.JobClaimed, Attempts: 1}
	st.CreateJob(ctx, lost)
	// 7. Re-queue recorded, died before the move back.
	sum = put("requeue.json", body(`"n01"`))
	rq := &store.Job{Name: "requeue.json", File: "requeue.json", SHA256: sum, Status: store.JobRequeued, Queued: "requeue.json", Attempts: 1}
	st.CreateJob(ctx, rq)

	obs := newCollect()
	e.start(Options{Observer: obs})
	sub, r := e.finished("unrecorded.json", 30*time.Second)
	if sub != Done || r.Attempts != 1 {
		t.Fatalf("unrecorded: %s %+v", sub, r)
	}
	sub, r = e.finished("half.json", 30*time.Second)
	if sub != Done || r.Attempts != 2 || len(r.Nodes) != 2 || r.Nodes[0].RunID != okRun || r.Nodes[1].RunID == deadRun ||
		len(r.Nodes[1].PreviousRunIDs) != 1 || r.Nodes[1].PreviousRunIDs[0] != deadRun {
		t.Fatalf("half: %s %+v", sub, r)
	}
	sub, r = e.finished("tired.json", 30*time.Second)
	if sub != Failed || !strings.Contains(r.Error, "interrupted 3 times") || !strings.Contains(r.Error, "--max-attempts 3") {
		t.Fatalf("tired: %s %+v", sub, r)
	}
	sub, r = e.finished("allrun.json", 30*time.Second)
	if sub != Done || len(r.RunIDs) != 1 || r.RunIDs[0] != allRunID {
		t.Fatalf("allrun: %s %+v", sub, r)
	}
	sub, r = e.finished("moved.json", 30*time.Second)
	if sub != Failed || r.Error != "recorded" {
		t.Fatalf("moved: %s %+v", sub, r)
	}
	if sub, r = e.finished("requeue.json", 30*time.Second); sub != Done || r.Attempts != 2 {
		t.Fatalf("requeue: %s %+v", sub, r)
	}
	g, _ := st.GetJob(ctx, lost.ID)
	if g.Status != store.JobLost || !g.Archived {
		t.Fatalf("lost: %+v", g)
	}
	// 4 runs were set up; only n01 of "half" ran again, plus "unrecorded" and "requeue".
	runs, _ := st.ListRuns(ctx, store.RunFilter{})
	if len(runs) != 4+3 {
		t.Fatalf("%d runs, want 7", len(runs))
	}
	if e.jobs(Processing) != nil || e.jobs(Incoming) != nil {
		t.Fatalf("left: processing %v incoming %v", e.jobs(Processing), e.jobs(Incoming))
	}
}

// TestOnceDrains: Once returns when the folder is empty and nothing runs.
func TestOnceDrains(t *testing.T) {
	e := newEnv(t, 2)
	for i := range 5 {
		e.drop(fmt.Sprintf("o%d.json", i), fmt.Sprintf(`{"action":"run","script":"trivial","nodes":["n%02d"]}`, i%2))
	}
	w, err := New(e.a, Options{Dir: e.dir, Once: true, Settle: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Run(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("run: %v %v", err, ctx.Err())
	}
	if len(e.jobs(Done)) != 5 {
		t.Fatalf("done: %v", e.jobs(Done))
	}
}

func TestParseTable(t *testing.T) {
	tests := []struct {
		name, file, body string
		check            func(*Spec) bool
		err              string
	}{
		{"json full", "a.json", `{"id":"x","action":"deploy","nodes":["a","b"],"params":{"n":3,"b":true,"f":1.5,"s":"v"},
			"instance_info":{"image_source":"http://127.0.0.1/i","root_gb":10},"timeout":"30m","parallel":2}`,
			func(s *Spec) bool {
				return s.ID == "x" && s.Script == "deploy" && len(s.Nodes) == 2 && s.Params["n"] == "3" && s.Params["b"] == "true" &&
					s.Params["f"] == "1.5" && s.Timeout == 30*time.Minute && s.Parallel == 2 && s.InstanceInfo["root_gb"] == int64(10)
			}, ""},
		{"yaml undeploy", "a.yaml", "action: undeploy\nall: true\ntimeout: 90\n",
			func(s *Spec) bool { return s.Script == "teardown" && s.All && s.Timeout == 90*time.Second }, ""},
		{"run without nodes", "a.yml", "action: run\nscript: hello\n", func(s *Spec) bool { return s.Script == "hello" && len(s.Nodes) == 0 }, ""},
		{"clean steps", "a.yaml", "action: clean\nnodes: [a]\nsteps:\n  - {interface: deploy, step: erase_devices, args: {passes: 1}}\n",
			func(s *Spec) bool {
				return s.Script == "clean" && len(s.Steps) == 1 && s.Steps[0].Args["passes"] == float64(1)
			}, ""},
		{"provide", "a.json", `{"action":"provide","all":true}`, func(s *Spec) bool { return s.Script == "clean" && s.All }, ""},
		{"script on verb", "a.json", `{"action":"clean","script":"x","all":true}`, nil, `field "script": only for action "run"`},
		{"run without script", "a.json", `{"action":"run"}`, nil, `field "script": missing`},
		{"verb without nodes", "a.json", `{"action":"inspect"}`, nil, `action "inspect" needs "nodes"`},
		{"empty nodes", "a.json", `{"action":"inspect","nodes":[]}`, nil, `field "nodes": is empty`},
		{"dup node", "a.json", `{"action":"inspect","nodes":["a","a"]}`, nil, `listed twice`},
		{"negative timeout", "a.json", `{"action":"run","script":"x","timeout":"-5m"}`, nil, `field "timeout": must be positive`},
		{"bad id", "a.json", `{"action":"run","script":"x","id":7}`, nil, `field "id": must be a string`},
		{"two docs", "a.json", `{"action":"run","script":"x"} {}`, nil, "more than one document"},
		{"several problems named together", "a.json", `{"action":"nope","nodes":"a","all":"yes"}`, nil, `field "all": must be true or false`},
		{"bad extension", "a.txt", `{}`, nil, "unsupported job file extension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.file, []byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !tt.check(s) {
				t.Fatalf("spec %+v err %v", s, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a.json", `{"action":"run","script":"x","nodes":["a"],"params":{"k":1}}`)
	f.Add("a.yaml", "action: deploy\nnodes: [a]\ninstance_info: {x: [1, {y: 2}]}\n")
	f.Add("a.yml", "- 1\n- 2\n")
	f.Fuzz(func(t *testing.T, name, body string) {
		s, err := Parse(name, []byte(body))
		if err == nil && s == nil {
			t.Fatal("nil spec without error")
		}
		if err == nil {
			if _, ok := ActionScript(s.Action); !ok {
				t.Fatalf("accepted unknown action %q", s.Action)
			}
		}
	})
}

// BenchmarkJobThroughput: jobs of a trivial script through the whole
// protocol (claim, record, run, result, move), 16 jobs at once on 20 nodes.
func BenchmarkJobThroughput(b *testing.B) {
	e := newEnv(b, 20)
	for i := range b.N {
		e.drop(fmt.Sprintf("b%06d.json", i), fmt.Sprintf(`{"action":"run","script":"trivial","nodes":["n%02d"]}`, i%20))
	}
	b.ResetTimer()
	w, err := New(e.a, Options{Dir: e.dir, Once: true, Settle: -1, Parallel: 16})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := len(e.jobs(Done)); n != b.N {
		b.Fatalf("%d done, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
