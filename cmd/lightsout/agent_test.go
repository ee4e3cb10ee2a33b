package main

import "testing"

func TestIsRamdiskInit(t *testing.T) {
	for _, tc := range []struct {
		pid  int
		argv []string
		want bool
	}{
		{1, []string{"/init"}, true},
		{1, []string{"/sbin/init", "quiet"}, true},
		{1, []string{"lightsout", "serve"}, false}, // a container's entry point
		{1, []string{"/usr/bin/lightsout", "agent"}, false},
		{42, []string{"/init"}, false},
		{1, nil, false},
	} {
		if got := isRamdiskInit(tc.pid, tc.argv); got != tc.want {
			t.Errorf("isRamdiskInit(%d, %q) = %v, want %v", tc.pid, tc.argv, got, tc.want)
		}
	}
}
