package image

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/fat12"

	"github.com/lightsout/lightsout/runtime/testenv"
)

func TestFormatParams(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]string
		want    string
		wantErr string
	}{
		{"empty", map[string]string{}, "", ""},
		{"sorted, no trailing newline", map[string]string{"z": "1", "ipa-api-url": "http://127.0.0.1:6385", "BOOTIF": "aa:bb"},
			"BOOTIF=aa:bb\nipa-api-url=http://127.0.0.1:6385\nz=1", ""},
		{"value with = and spaces", map[string]string{"root_device": "size=10,model=a b"}, "root_device=size=10,model=a b", ""},
		{"empty value", map[string]string{"k": ""}, "k=", ""},
		{"empty key", map[string]string{"": "x"}, "", "empty key"},
		{"key with =", map[string]string{"a=b": "x"}, "", "contains '='"},
		{"value with newline", map[string]string{"a": "x\ny"}, "", "line break"},
		{"key with CR", map[string]string{"a\r": "x"}, "", "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatParams(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if back := ParseParams(got); len(tt.params) > 0 && !reflect.DeepEqual(back, tt.params) {
				t.Fatalf("round trip: %v, want %v", back, tt.params)
			}
		})
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"a=1\nb=2", map[string]string{"a": "1", "b": "2"}},
		{"a=1\r\nb=x=y\r\n", map[string]string{"a": "1", "b": "x=y"}},
		{"junk\n\n=nokey\nc=3", map[string]string{"c": "3"}},
	}
	for _, tt := range tests {
		if got := ParseParams([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseParams(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestWriteFloppy checks floppies of several sizes, with and without extra
// files: readable by our reader, fsck.vfat -n clean, readable by mtools,
// labelled ir-vfd-dev.
func TestWriteFloppy(t *testing.T) {
	dir := t.TempDir()
	small := randFile(t, dir, "small.bin", 1000)
	big := randFile(t, dir, "big.bin", 300_000)
	params := map[string]string{"ipa-api-url": "http://127.0.0.1:6385", "boot_method": "vmedia", "coreos.configdrive": "0"}
	tests := []struct {
		name  string
		size  int64
		files map[string]string
	}{
		{"default 1.44 MB", 0, nil},
		{"64 KiB", 64 << 10, map[string]string{"token": small}},
		{"720 KiB", 720 << 10, map[string]string{"etc/ironic/ca.crt": small}},
		{"2.88 MB with files", 2880 << 10, map[string]string{"A Long Mixed Name.json": big, "dir/sub/x.bin": small}},
		{"5 MiB", 5 << 20, map[string]string{"big.bin": big}},
		{"12 MiB", 12 << 20, map[string]string{"big.bin": big, "small": small}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "floppy.img")
			if err := WriteFloppy(context.Background(), img, params, FloppyOptions{Size: tt.size, Files: tt.files}); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.size
			if want == 0 {
				want = DefaultFloppySize
			}
			if st.Size() != want {
				t.Fatalf("size %d, want %d", st.Size(), want)
			}
			got, err := ReadFloppyParams(img)
			if err != nil || !reflect.DeepEqual(got, params) {
				t.Fatalf("ReadFloppyParams = %v, %v; want %v", got, err, params)
			}
			for name, src := range tt.files {
				data, err := ReadFloppyFile(img, name)
				if err != nil {
					t.Fatal(err)
				}
				srcData, _ := os.ReadFile(src)
				if string(data) != string(srcData) {
					t.Fatalf("%s: content differs", name)
				}
			}
			info, err := Inspect(img)
			if err != nil {
				t.Fatal(err)
			}
			if info.Kind != "fat" || info.Label != FloppyLabel || !reflect.DeepEqual(info.Params, params) {
				t.Fatalf("Inspect = %+v", info)
			}

			testenv.RequireTools(t, "fsck.vfat", "mtype", "mdir")
			fsckClean(t, img)
			out, rc := runCmd(t, "mtype", "-i", img, "::/parameters.txt")
			wantText, _ := FormatParams(params)
			if rc != 0 || out != string(wantText) {
				t.Fatalf("mtype parameters.txt: rc %d, %q, want %q", rc, out, wantText)
			}
			out, rc = runCmd(t, "mdir", "-i", img, "::/")
			if rc != 0 || !strings.Contains(out, "parameters.txt") || !strings.Contains(out, "ir-vfd-dev") {
				t.Fatalf("mdir: rc %d\n%s", rc, out)
			}
		})
	}
}

func TestWriteFloppyErrors(t *testing.T) {
	dir := t.TempDir()
	big := randFile(t, dir, "big.bin", 100_000)
	tests := []struct {
		name    string
		params  map[string]string
		opts    FloppyOptions
		wantErr string
		is      error
	}{
		{"size too small", nil, FloppyOptions{Size: 4096}, "floppy size 4096", ErrInvalid},
		{"size too big", nil, FloppyOptions{Size: 16 << 20}, "between", ErrInvalid},
		{"size not sectors", nil, FloppyOptions{Size: 1474561}, "multiple of 512", ErrInvalid},
		{"file does not fit", nil, FloppyOptions{Size: 64 << 10, Files: map[string]string{"big": big}}, "choose a larger size", ErrInvalid},
		{"parameters.txt given as file", nil, FloppyOptions{Files: map[string]string{"PARAMETERS.TXT": big}}, "generated from the parameters", ErrInvalid},
		{"escaping name", nil, FloppyOptions{Files: map[string]string{"../x": big}}, "leaves the image root", ErrInvalid},
		{"unclean name", nil, FloppyOptions{Files: map[string]string{"a//b": big}}, "clean relative name", ErrInvalid},
		{"missing source", nil, FloppyOptions{Files: map[string]string{"x": filepath.Join(dir, "nope")}}, "nope", fs.ErrNotExist},
		{"directory source", nil, FloppyOptions{Files: map[string]string{"x": dir}}, "not a regular file", ErrInvalid},
		{"long label", nil, FloppyOptions{Label: "ABCDEFGHIJKL"}, "longer than 11", ErrInvalid},
		{"bad key", map[string]string{"a=b": "c"}, FloppyOptions{}, "contains '='", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "f.img")
			err := WriteFloppy(context.Background(), img, tt.params, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.is, tt.wantErr)
			}
			if _, err := os.Stat(img); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a failed WriteFloppy left %s behind", img)
			}
		})
	}
}

// TestReclaimLostClusters proves the go-diskfs defect exists and that the
// fix frees only the lost cluster.
func TestReclaimLostClusters(t *testing.T) {
	// raw go-diskfs FAT12, as WriteFloppy would get it without the fix
	mem := newMemBackend(DefaultFloppySize)
	fsys, err := fat12.Create(mem, DefaultFloppySize, 0, 512, "RAW", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := putFATFile(fsys, fatFile{name: "parameters.txt", data: []byte("a=b")}); err != nil {
		t.Fatal(err)
	}
	if err := putFATFile(fsys, fatFile{name: "d/x.bin", data: make([]byte, 5000)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.img")
	if err := os.WriteFile(raw, mem.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	freed, err := reclaimLostClusters(mem.Bytes())
	if err != nil || freed != 1 {
		t.Fatalf("reclaimLostClusters = %d, %v; want 1 lost cluster (go-diskfs marks cluster 2)", freed, err)
	}
	if again, err := reclaimLostClusters(mem.Bytes()); err != nil || again != 0 {
		t.Fatalf("second pass freed %d, %v", again, err)
	}
	fixed := filepath.Join(dir, "fixed.img")
	if err := os.WriteFile(fixed, mem.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	testenv.RequireTools(t, "fsck.vfat", "mkfs.vfat", "mcopy")
	if out, rc := runCmd(t, "fsck.vfat", "-n", raw); rc == 0 {
		t.Logf("note: go-diskfs no longer leaks a cluster (fsck rc 0):\n%s", out)
	}
	fsckClean(t, fixed)

	// a dosfstools image with files has nothing lost: the fixer must not touch it
	ref := filepath.Join(dir, "ref.img")
	if out, rc := runCmd(t, "mkfs.vfat", "-C", "-n", "REF", ref, "1440"); rc != 0 {
		t.Fatal(out)
	}
	src := randFile(t, dir, "payload.bin", 200_000)
	if out, rc := runCmd(t, "mcopy", "-i", ref, src, "::/payload.bin"); rc != 0 {
		t.Fatal(out)
	}
	if out, rc := runCmd(t, "mmd", "-i", ref, "::/sub"); rc != 0 {
		t.Fatal(out)
	}
	if out, rc := runCmd(t, "mcopy", "-i", ref, src, "::/sub/again.bin"); rc != 0 {
		t.Fatal(out)
	}
	img, _ := os.ReadFile(ref)
	if freed, err := reclaimLostClusters(img); err != nil || freed != 0 {
		t.Fatalf("dosfstools image: freed %d, %v; want 0", freed, err)
	}
	// and our reader reads floppies made by mkfs.vfat + mcopy (Ironic M's way)
	params := filepath.Join(dir, "parameters.txt")
	if err := os.WriteFile(params, []byte("ipa-api-url=http://127.0.0.1:6385\nboot_method=vmedia"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, rc := runCmd(t, "mcopy", "-i", ref, params, "::/parameters.txt"); rc != 0 {
		t.Fatal(out)
	}
	got, err := ReadFloppyParams(ref)
	want := map[string]string{"ipa-api-url": "http://127.0.0.1:6385", "boot_method": "vmedia"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadFloppyParams(mkfs.vfat image) = %v, %v", got, err)
	}
}

func TestWriteFloppyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	img := filepath.Join(t.TempDir(), "f.img")
	if err := WriteFloppy(ctx, img, map[string]string{"a": "b"}, FloppyOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
