package main

import (
	"encoding/json"
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
