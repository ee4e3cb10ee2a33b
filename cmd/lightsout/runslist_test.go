package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRunsListPages: --limit shows the newest runs and says how to get the
// next page; --before and --after walk the pages by run id.
func TestRunsListPages(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	for i := 0; i < 5; i++ {
		c.must("run", "hello", "--node", "n1")
	}
	ids := func(args ...string) ([]int64, string) {
		t.Helper()
		code, out, errOut := c.run(append([]string{"runs", "list", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("runs list %v: exit %d %s", args, code, errOut)
		}
		var runs []struct{ ID int64 }
		if err := json.Unmarshal([]byte(out), &runs); err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range runs {
			got = append(got, r.ID)
		}
		return got, errOut
	}
	tests := []struct {
		args []string
		want []int64
		hint string
	}{
		{[]string{"--limit", "2"}, []int64{4, 5}, "lightsout runs list --limit 2 --before 4"},
		{[]string{"--limit", "2", "--before", "4"}, []int64{2, 3}, "--before 2"},
		{[]string{"--limit", "2", "--before", "2"}, []int64{1}, ""},
		{[]string{"--limit", "3", "--after", "1"}, []int64{2, 3, 4}, "--after 4"},
		{nil, []int64{1, 2, 3, 4, 5}, ""},
	}
	for _, tt := range tests {
		got, errOut := ids(tt.args...)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v: ids %v, want %v", tt.args, got, tt.want)
		}
		if (tt.hint == "") != !strings.Contains(errOut, "more runs") || !strings.Contains(errOut, tt.hint) {
			t.Errorf("%v: stderr %q, want the hint %q", tt.args, errOut, tt.hint)
		}
	}
	if code, _, errOut := c.run("runs", "list", "--before", "-1"); code != 2 || !strings.Contains(errOut, "--before") {
		t.Fatalf("--before -1: exit %d %s", code, errOut)
	}
}

// TestRunsPrune: refused without a retention (naming the option); with one,
// recent runs keep their events.
func TestRunsPrune(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	c.must("run", "hello", "--node", "n1")
	if code, _, errOut := c.run("runs", "prune"); code == 0 || !strings.Contains(errOut, "run_retention") {
		t.Fatalf("without retention: exit %d %s", code, errOut)
	}
	conf := filepath.Join(t.TempDir(), "l.conf")
	if err := os.WriteFile(conf, []byte("[lightsout]\nrun_retention = 1d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.must("--config", conf, "runs", "prune")
	if !strings.Contains(out, "deleted the events of 0 runs") || !strings.Contains(out, "72h0m0s") {
		t.Fatalf("prune: %s", out)
	}
	if log := c.must("--config", conf, "runs", "log", "1"); strings.TrimSpace(log) == "" {
		t.Fatal("a recent run lost its events")
	}
}
