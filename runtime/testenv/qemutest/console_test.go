package qemutest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConsoleWait(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		close   bool
		from    int
		want    string
		line    string
		errPart string
	}{
		{name: "marker line", writes: []string{"noise\r\n\x1b[2J", "LIGHTSOUT-TEST-IMAGE-BOOTED firm", "ware=uefi secureboot=1\r\nmore"},
			want: BootMarker, line: "LIGHTSOUT-TEST-IMAGE-BOOTED firmware=uefi secureboot=1"},
		{name: "failure marker first", writes: []string{"Kernel panic - not syncing\n"}, want: BootMarker, errPart: `failure marker "Kernel panic`},
		{name: "closed without marker", writes: []string{"booting\n"}, close: true, want: BootMarker, errPart: "console closed"},
		{name: "partial last line when closed", writes: []string{"x LIGHTSOUT-AGENT-UP url=http://127.0.0.1:1"}, close: true,
			want: "LIGHTSOUT-AGENT-UP", line: "x LIGHTSOUT-AGENT-UP url=http://127.0.0.1:1"},
		{name: "before offset ignored", writes: []string{"LIGHTSOUT-AGENT-POWEROFF\n", "LIGHTSOUT-AGENT-POWEROFF again\n"}, from: 25,
			want: "LIGHTSOUT-AGENT-POWEROFF", line: "LIGHTSOUT-AGENT-POWEROFF again"},
		{name: "deadline", writes: []string{"slow\n"}, want: BootMarker, errPart: "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConsole()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if tt.errPart == "deadline exceeded" {
				ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
			}
			go func() {
				for _, w := range tt.writes {
					_, _ = c.Write([]byte(w))
				}
				if tt.close {
					c.CloseWithError(errors.New("qemu exited"))
				}
			}()
			line, err := c.WaitFrom(ctx, tt.from, tt.want, FailMarkers...)
			if tt.errPart != "" {
				var me *MarkerError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err = %v, want a MarkerError with %q", err, tt.errPart)
				}
				return
			}
			if err != nil || line != tt.line {
				t.Fatalf("line %q, err %v; want %q", line, err, tt.line)
			}
		})
	}
}

func TestParseBootMarker(t *testing.T) {
	tests := []struct {
		text   string
		fw     string
		sb, ok bool
	}{
		{"x\nLIGHTSOUT-TEST-IMAGE-BOOTED firmware=bios secureboot=0\n", "bios", false, true},
		{"LIGHTSOUT-TEST-IMAGE-BOOTED firmware=uefi secureboot=1", "uefi", true, true},
		{"LIGHTSOUT-TEST-IMAGE-BOOTED firmware=uefi secureboot=", "", false, false},
		{"nothing", "", false, false},
	}
	for _, tt := range tests {
		fw, sb, ok := ParseBootMarker(tt.text)
		if fw != tt.fw || sb != tt.sb || ok != tt.ok {
			t.Errorf("ParseBootMarker(%q) = %q %v %v, want %q %v %v", tt.text, fw, sb, ok, tt.fw, tt.sb, tt.ok)
		}
	}
}

func TestArgs(t *testing.T) {
	dir := t.TempDir()
	if _, err := Args(Options{Firmware: "coreboot"}); err == nil {
		t.Fatal("unknown firmware accepted")
	}
	if _, err := Args(Options{Firmware: UEFI}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Fatalf("UEFI without Dir: %v", err)
	}
	a, err := Args(Options{Firmware: BIOS, Disk: "d.qcow2", DiskFormat: "qcow2", Snapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(a, " "); !strings.Contains(s, "-machine pc") || !strings.Contains(s, "if=virtio,format=qcow2,file=d.qcow2,snapshot=on") {
		t.Fatalf("BIOS args: %s", s)
	}
	if _, err := Args(Options{Firmware: UEFISecureBoot, Dir: dir}); err != nil {
		t.Skipf("no OVMF: %v", err)
	}
	a, _ = Args(Options{Firmware: UEFISecureBoot, Dir: dir})
	if s := strings.Join(a, " "); !strings.Contains(s, "q35,smm=on") || !strings.Contains(s, OVMFCodeSecure) || !strings.Contains(s, "property=secure,value=on") {
		t.Fatalf("secure boot args: %s", s)
	}
}
