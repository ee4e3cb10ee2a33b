package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// tgtd and tgtadm come with their libraries and the dynamic loader, at
// ldd's paths, in a fixed order.
func TestResolveToolsTgtd(t *testing.T) {
	testenv.RequireTools(t, "ldd")
	testenv.RequireFiles(t, TgtdTools...)
	files, err := resolveTools(context.Background(), TgtdTools)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(files) {
		t.Errorf("not sorted: %v", files)
	}
	for _, want := range append(slices.Clone(TgtdTools), "/lib64/ld-linux-x86-64.so.2") {
		if !slices.Contains(files, want) {
			t.Errorf("%s missing from %v", want, files)
		}
	}
	if !slices.ContainsFunc(files, func(p string) bool { return strings.Contains(p, "/libc.so") }) {
		t.Errorf("libc missing from %v", files)
	}
	again, _ := resolveTools(context.Background(), []string{TgtdTools[1], TgtdTools[0]})
	if !slices.Equal(files, again) {
		t.Errorf("order of the tools changed the list: %v vs %v", files, again)
	}
	if _, err := resolveTools(context.Background(), []string{"tgtd"}); err == nil {
		t.Error("a relative tool path was accepted")
	}
}

// A ramdisk built with the tgtd tools holds them (byte for byte) and
// /var/run; the listing is recorded in ramdisk.json.
func TestRamdiskWithTgtd(t *testing.T) {
	testenv.RequireTools(t, "cpio", "gzip", "ldd")
	testenv.RequireFiles(t, TgtdTools...)
	requireKernel(t)
	probe := probeBinary(t)
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Tools: TgtdTools})
	root := cpioExtract(t, r.Initramfs)
	for _, p := range append(slices.Clone(TgtdTools), "/lib64/ld-linux-x86-64.so.2") {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatalf("%s not in the initramfs: %v", p, err)
		}
		want, _ := os.ReadFile(p)
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the host's", p)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "var/run")); err != nil || !st.IsDir() {
		t.Errorf("no /var/run for tgtd's control socket: %v", err)
	}
	js, _ := os.ReadFile(filepath.Join(root, RamdiskInfoPath))
	if !strings.Contains(string(js), "/usr/sbin/tgtd") {
		t.Errorf("ramdisk.json does not list the tools: %s", js)
	}
}
