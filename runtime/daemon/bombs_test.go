package daemon_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/watch"
)

// TestServeSurvivesBombs: one watch job per kind of script bomb (memory,
// coroutines, backtracking patterns, gsub loop, infinite tail call). The
// daemon stays up, each job fails with resource_limit or a timeout, and a
// normal job after them succeeds.
func TestServeSurvivesBombs(t *testing.T) {
	in := newInst(t, 10)
	f, err := os.OpenFile(in.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "run_memory_limit = 32M\nrun_max_coroutines = 50")
	f.Close()
	bombs := []struct{ name, src, want string }{
		{"rep", `local s = string.rep("x", 2^40)`, "resource_limit"},
		{"concat", `local s = "x" for i = 1, 60 do s = s .. s end`, "resource_limit"},
		{"tconcat", `local y = string.rep("y", 1e6) local t = {} for i = 1, 200 do t[i] = y end local s = table.concat(t)`, "resource_limit"},
		{"table", `local t = {} local i = 0 while true do i = i + 1 t[i] = {("x"):rep(10000) .. i} end`, "resource_limit"},
		{"coroutines", `local t = {} while true do t[#t+1] = coroutine.create(function() coroutine.yield() end) coroutine.resume(t[#t]) end`, "resource_limit"},
		{"pattern", `local s = string.rep("a", 5000) s:find(string.rep("(.-)", 12) .. "b")`, "timed out"},
		{"gsubloop", `local s = "abc" while true do s = s:gsub("b", "b") end`, "timed out"},
		{"tailcall", `local function f(...) return f(1, ...) end f()`, ""},
	}
	scripts := map[string]string{"normal.lua": `run.step("ok", function() assert(("a=1"):match("(%w)=(%d)") == "a") end)`}
	for _, b := range bombs {
		scripts["bomb_"+b.name+".lua"] = b.src
	}
	p := in.serve(in.site(scripts), "--parallel", "8")
	for i, b := range bombs {
		// The spinning bombs (want a timeout) get 2s; the memory bombs a
		// generous 20s as they share two busy cores with them.
		timeout := "20s"
		if b.want != "resource_limit" {
			timeout = "2s"
		}
		in.drop("bomb-"+b.name+".json", fmt.Sprintf(`{"id":"b-%s","action":"run","script":"bomb_%s","nodes":["n%02d"],"timeout":%q}`, b.name, b.name, i, timeout))
	}
	waitFor(t, 60*time.Second, "the bomb jobs to finish", func() bool { return len(in.files(watch.Failed))+len(in.files(watch.Done)) == len(bombs) })
	for _, b := range bombs {
		n := "bomb-" + b.name + ".json"
		r := in.result(watch.Failed, n)
		if r.Attempts != 1 || len(r.Nodes) != 1 {
			t.Errorf("%s: %d attempts (the daemon restarted?), nodes %+v", n, r.Attempts, r.Nodes)
			continue
		}
		nr := r.Nodes[0]
		t.Logf("%s: %s %.160s", n, nr.Status, nr.Error)
		if !strings.Contains(nr.Error, b.want) || nr.Status != "failed" && nr.Status != "timed_out" {
			t.Errorf("%s: %s %q, want failed/timed_out with %q", n, nr.Status, nr.Error, b.want)
		}
	}
	select {
	case err := <-p.done:
		t.Fatalf("the daemon exited: %v\n%s", err, p.out.String())
	default:
	}
	in.drop("normal.json", `{"id":"normal","action":"run","script":"normal","nodes":["n09"]}`)
	waitFor(t, 30*time.Second, "the normal job", func() bool { return len(in.files(watch.Done)) == 1 })
	if r := in.result(watch.Done, "normal.json"); r.Status != "done" {
		t.Fatalf("normal job after the bombs: %+v", r)
	}
}
