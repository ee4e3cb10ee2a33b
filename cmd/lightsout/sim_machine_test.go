package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

func TestParseMachine(t *testing.T) {
	specs := []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 2}}
	tests := []struct {
		in       string
		captures bool
		want     string // servers joined, "*" for all
		err      string
	}{
		{"qemu", false, "*", ""},
		{"qemu=", false, "*", ""},
		{"qemu=gen10-1, gen8-0", false, "gen10-1,gen8-0", ""},
		{"qemu=gen9-0", false, "", `no server "gen9-0"`},
		{"qemu=my-capture", true, "my-capture", ""},
		{"qemu=,", false, "", "name at least one server"},
		{"libvirt", false, "", "give qemu or qemu="},
	}
	for _, tc := range tests {
		got, err := parseMachine(tc.in, specs, tc.captures)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want == "*" && got != nil, tc.want != "*" && strings.Join(got, ",") != tc.want:
			t.Errorf("%q: servers %v, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseTaps(t *testing.T) {
	tests := []struct {
		in   []string
		want map[string]string
		err  string
	}{
		{nil, nil, ""},
		{[]string{"gen8-0=tap0", " gen10-0 = tap1 "}, map[string]string{"gen8-0": "tap0", "gen10-0": "tap1"}, ""},
		{[]string{"gen8-0"}, nil, "give SERVER=TAP"},
		{[]string{"=tap0"}, nil, "give SERVER=TAP"},
		{[]string{"gen8-0=tap0,tap1"}, nil, "give SERVER=TAP"},
		{[]string{"gen8-0=a-very-long-interface"}, nil, "at most 15"},
	}
	for _, tc := range tests {
		got, err := parseTaps(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !maps.Equal(got, tc.want) || (tc.want == nil) != (got == nil):
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}
