package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// testArchive is a small archive with every member kind the initramfs uses.
func testArchive(t testing.TB, files map[string]string) *cpioArchive {
	t.Helper()
	a := newCPIOArchive()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.add(cpioEntry{Name: "proc", Mode: cpioDir | 0o755}))
	must(a.add(cpioEntry{Name: "dev/console", Mode: cpioChar | 0o600, Major: 5, Minor: 1}))
	must(a.add(cpioEntry{Name: "bin/sh", Mode: cpioLink | 0o777, Target: "/init"}))
	for name, data := range files {
		must(a.add(bytesEntry(name, 0o644, []byte(data))))
	}
	return a
}

// TestCPIOAgainstSystemCpio writes an archive and reads it back with GNU
// cpio (an independent reader): names, types, modes, device numbers, owner,
// mtime, link target and file contents.
func TestCPIOAgainstSystemCpio(t *testing.T) {
	testenv.RequireTools(t, "cpio")
	files := map[string]string{"init": "#!/bin/sh\necho hi\n", "etc/lightsout/modules.load": "/lib/modules/x/a.ko\n",
		"lib/modules/6.1.0-1-amd64/kernel/drivers/ata/ahci.ko": strings.Repeat("\x7fELF", 1001), "empty": "",
		"odd-3": "abc"}
	var buf bytes.Buffer
	if err := testArchive(t, files).writeTo(&buf, 1700000000, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	arc := filepath.Join(dir, "a.cpio")
	if err := os.WriteFile(arc, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-itv", "--quiet", "--numeric-uid-gid", "-F", arc)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	listing := string(out)
	want := []string{
		`(?m)^crw------- +1 0 +0 +5, +1 Nov 14 +2023 dev/console$`,
		`(?m)^drwxr-xr-x +2 0 +0 +0 Nov 14 +2023 dev$`,
		`(?m)^lrwxrwxrwx +1 0 +0 +5 Nov 14 +2023 bin/sh -> /init$`,
		`(?m)^-rw-r--r-- +1 0 +0 +18 Nov 14 +2023 init$`,
		`(?m)^-rw-r--r-- +1 0 +0 +4004 Nov 14 +2023 lib/modules/6.1.0-1-amd64/kernel/drivers/ata/ahci.ko$`,
		`(?m)^drwxr-xr-x +2 0 +0 +0 Nov 14 +2023 lib/modules/6.1.0-1-amd64/kernel/drivers$`,
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(listing) {
			t.Errorf("cpio -tv listing has no line matching %s:\n%s", w, listing)
		}
	}
	// sorted: every parent before its children
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(l)
		name := f[len(f)-1]
		if strings.HasPrefix(l, "l") {
			name = f[len(f)-3]
		}
		names = append(names, name)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if d := filepath.Dir(n); d != "." && !seen[d] {
			t.Errorf("%s listed before its directory %s: %v", n, d, names)
		}
		seen[n] = true
	}
	// contents, through cpio's own extraction
	for name, data := range files {
		cmd := exec.Command("cpio", "-i", "--quiet", "--to-stdout", "-F", arc, name)
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -i --to-stdout %s: %v", name, err)
		}
		if string(got) != data {
			t.Errorf("%s: cpio extracted %d bytes, want %d", name, len(got), len(data))
		}
	}
}

func TestCPIOArchiveErrors(t *testing.T) {
	a := newCPIOArchive()
	if err := a.add(bytesEntry("init", 0o755, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		e    cpioEntry
		want string
	}{
		{bytesEntry("/init", 0o755, nil), "added twice"},
		{bytesEntry("", 0o644, nil), "bad member name"},
		{cpioEntry{Name: "big", Mode: cpioReg | 0o644, Size: 1 << 32}, "does not fit"},
	} {
		if err := a.add(tc.e); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add(%q): err %v, want %q", tc.e.Name, err, tc.want)
		}
	}
	// a directory may be added twice (it is implied by its files too)
	if err := a.add(cpioEntry{Name: "etc", Mode: cpioDir | 0o755}); err != nil {
		t.Fatal(err)
	}
	if err := a.add(cpioEntry{Name: "etc/", Mode: cpioDir | 0o755}); err != nil {
		t.Fatalf("directory added twice: %v", err)
	}
	// a source that changes size while the archive is written is an error
	b := newCPIOArchive()
	_ = b.add(cpioEntry{Name: "f", Mode: cpioReg | 0o644, Size: 10,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("short")), nil }})
	if err := b.writeTo(io.Discard, 0, nil); err == nil || !strings.Contains(err.Error(), "expected 10") {
		t.Fatalf("short source: err %v", err)
	}
}

// FuzzCPIORoundTrip writes archives of arbitrary members and reads them
// back with github.com/cavaliergopher/cpio (an independent reader): same
// names in sorted order, same sizes and contents, same modes; two writes
// give the same bytes.
func FuzzCPIORoundTrip(f *testing.F) {
	f.Add("init", []byte("\x7fELF"), "etc/x", []byte(""), uint16(0o755))
	f.Add("a/b/c", []byte("abc"), "a-b", []byte("12345"), uint16(0o644))
	f.Fuzz(func(t *testing.T, n1 string, d1 []byte, n2 string, d2 []byte, perm uint16) {
		a := newCPIOArchive()
		want := map[string][]byte{}
		for _, m := range []struct {
			n string
			d []byte
		}{{n1, d1}, {n2, d2}} {
			e := bytesEntry(m.n, uint32(perm)&0o7777, m.d)
			if err := a.add(e); err != nil {
				return // bad or duplicate names are refused, fine
			}
			n, _ := cleanName(m.n)
			want[n] = m.d
		}
		var b1, b2 bytes.Buffer
		if err := a.writeTo(&b1, 42, nil); err != nil {
			t.Fatal(err)
		}
		if err := a.writeTo(&b2, 42, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatal("two writes of one archive differ")
		}
		r := cpio.NewReader(&b1)
		var got []string
		for {
			h, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read back: %v (members so far %q)", err, got)
			}
			got = append(got, h.Name)
			if h.Uid != 0 || h.Guid != 0 || h.ModTime.Unix() != 42 {
				t.Fatalf("%s: uid %d gid %d mtime %d", h.Name, h.Uid, h.Guid, h.ModTime.Unix())
			}
			if d, ok := want[h.Name]; ok && h.Mode&cpio.ModeType == cpio.TypeReg {
				data, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(data, d) {
					t.Fatalf("%s: read %d bytes (%v), wrote %d", h.Name, len(data), err, len(d))
				}
				if uint32(h.Mode)&0o7777 != uint32(perm)&0o7777 {
					t.Fatalf("%s: mode %o, wrote %o", h.Name, h.Mode, perm)
				}
				delete(want, h.Name)
			}
		}
		if len(want) > 0 {
			t.Fatalf("members not read back: %v (read %q)", keysOf(want), got)
		}
		if fmt.Sprint(got) != fmt.Sprint(a.names()) {
			t.Fatalf("read %q, want sorted %q", got, a.names())
		}
	})
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
