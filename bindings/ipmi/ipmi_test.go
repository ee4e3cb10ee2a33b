package ipmi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gotypes "github.com/bougou/go-ipmi/pkg/types"
)

func TestParseDriverInfo(t *testing.T) {
	for _, tt := range []struct {
		name string
		info map[string]any
		want Options
		err  string
	}{
		{"ironic keys", map[string]any{"ipmi_address": "10.0.0.5", "ipmi_port": int64(6230), "ipmi_username": "admin", "ipmi_password": "pw",
			"ipmi_priv_level": "operator", "ipmi_cipher_suite": "3", "ipmi_bridging": "no", "ipmi_retry_timeout": 5.0},
			Options{Host: "10.0.0.5", Port: 6230, Username: "admin", Password: "pw", PrivLevel: "OPERATOR", CipherSuite: 3, RetryTimeout: 5 * time.Second}, ""},
		{"iLO fallback", map[string]any{"ilo_address": "ilo1.example", "ilo_username": "Administrator", "ilo_password": "pw"},
			Options{Host: "ilo1.example", Port: 623, Username: "Administrator", Password: "pw", PrivLevel: "ADMINISTRATOR", CipherSuite: 17, RetryTimeout: 60 * time.Second}, ""},
		{"ipmi keys win over ilo", map[string]any{"ipmi_address": "bmc", "ilo_address": "ilo", "ipmi_username": "u", "ilo_username": "x"},
			Options{Host: "bmc", Port: 623, Username: "u", PrivLevel: "ADMINISTRATOR", CipherSuite: 17, RetryTimeout: 60 * time.Second}, ""},
		{"host:port", map[string]any{"address": "127.0.0.1:16623", "username": "u", "password": "p"},
			Options{Host: "127.0.0.1", Port: 16623, Username: "u", Password: "p", PrivLevel: "ADMINISTRATOR", CipherSuite: 17, RetryTimeout: 60 * time.Second}, ""},
		{"no address", map[string]any{"ipmi_username": "u"}, Options{}, "no ipmi_address"},
		{"bad port", map[string]any{"ipmi_address": "h", "ipmi_port": "http"}, Options{}, "ipmi_port=\"http\""},
		{"bad priv", map[string]any{"ipmi_address": "h", "ipmi_priv_level": "root"}, Options{}, "ipmi_priv_level"},
		{"bridging", map[string]any{"ipmi_address": "h", "ipmi_bridging": "single"}, Options{}, "bridging is not supported"},
		{"long user", map[string]any{"ipmi_address": "h", "ipmi_username": strings.Repeat("u", 17)}, Options{}, "at most 16"},
		{"long password", map[string]any{"ipmi_address": "h", "ipmi_password": strings.Repeat("p", 21)}, Options{}, "20 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDriverInfo(tt.info)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				if p, _ := tt.info["ipmi_password"].(string); p != "" && strings.Contains(err.Error(), p) {
					t.Fatal("password in the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.AttemptTimeout = 0
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			if strings.Contains(got.String(), "pw") {
				t.Fatalf("password in String(): %s", got)
			}
		})
	}
}

// TestNICCapacityFromProliantutilsFixtures: the real `ipmitool fru print`
// answers proliantutils' tests use give the capacity it derives.
func TestNICCapacityFromProliantutilsFixtures(t *testing.T) {
	dir := proliantutilsFixtures(t)
	for file, want := range map[string]string{
		"NIC_FRU_OUT.txt":                 "1Gb",
		"NIC_FRU_OUT_TUPLE.txt":           "1Gb",
		"NIC_FRU_OUT_NO_PRODUCT_NAME.txt": "",
		"NIC_FRU_OUT_NO_PORT_DETAILS.txt": "",
		"NIC_FRU_OUT_ALL.txt":             "",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := NICCapacityFromFRUText(string(b)); got != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
	}
	if got := NICCapacityFromFRUText("Device not present (Command response could not be provided)"); got != "" {
		t.Errorf("absent device: %q", got)
	}
}

func TestNICCapacity(t *testing.T) {
	for _, tt := range []struct {
		names []string
		want  string
	}{
		{[]string{"ProLiant DL360 Gen10", "HP Ethernet 1Gb 4-port 331FLR Adapter"}, "1Gb"},
		{[]string{"HP Ethernet 1Gb 4-port 331FLR Adapter", "HPE Ethernet 10Gb 2-port 530FLR-SFP+ Adapter"}, "10Gb"},
		{[]string{"HPE Ethernet 10Gb 2-port Card"}, ""},     // not an Adapter
		{[]string{"HP Ethernet 10Gb Adapter"}, ""},          // no port
		{[]string{"HP Ethernet FastGb 2-port Adapter"}, ""}, // no digits
		{nil, ""},
	} {
		var frus []FRU
		for _, n := range tt.names {
			frus = append(frus, FRU{Prod: Area{Name: n}})
		}
		if got := NICCapacity(frus); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.names, got, tt.want)
		}
	}
}

func TestDecodeSELRecord(t *testing.T) {
	rec := []byte{0x07, 0x00, 0x02, 0x10, 0x00, 0x00, 0x60, 0x20, 0x00, 0x04, 0x09, 0x40, 0x6f, 0x00, 0xff, 0xff}
	e, err := DecodeSELRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != 7 || e.SensorType != "Power Unit" || e.Event != "Power off/down" || !e.Asserted || e.Time.Unix() != 0x60000010 {
		t.Fatalf("%+v", e)
	}
	rec[12] = 0x81
	rec[10] = 0x01
	rec[13] = 0x09
	if e, _ := DecodeSELRecord(rec); e.Asserted || e.Event != "Upper Critical going high" {
		t.Fatalf("%+v", e)
	}
	if _, err := DecodeSELRecord(rec[:15]); err == nil {
		t.Fatal("short record accepted")
	}
}

func TestDecodeBootFlags(t *testing.T) {
	b, err := decodeBootFlags([]byte{0xe0, 0x14, 0, 0, 0})
	if err != nil || b != (BootDevice{Device: "cdrom", Persistent: true, EFI: true, Valid: true}) {
		t.Fatalf("%+v %v", b, err)
	}
	if _, err := decodeBootFlags([]byte{0x80}); err == nil {
		t.Fatal("short data accepted")
	}
}

func TestClassify(t *testing.T) {
	o := Options{Host: "h", Port: 623, Password: "hunter2", CipherSuite: 17}
	bg := context.Background()
	cc := gotypes.NewResponseError(0xc1, "Invalid command hunter2")
	if e := classify(bg, "x", o, false, cc); e.Kind != KindIPMIError || !e.HasCC || e.CC != 0xc1 ||
		!strings.Contains(e.Error(), "0xc1 (invalid command)") || strings.Contains(e.Error(), "hunter2") {
		t.Fatalf("%v", e)
	}
	done, cancel := context.WithCancel(bg)
	cancel()
	if e := classify(done, "x", o, false, errors.New("canceled from caller")); e.Kind != KindCancelled {
		t.Fatalf("%v", e.Kind)
	}
	if e := classify(bg, "x", o, true, errors.New("RAKP2 authentication code mismatch")); e.Kind != KindLoginFailed {
		t.Fatalf("%v", e.Kind)
	}
	if CompletionCodeMeaning(0xd4) != "insufficient privilege level" || CompletionCodeMeaning(0x85) != "command-specific completion code" {
		t.Fatal("completion code meanings")
	}
}

// FuzzDecodeSELRecord: any bytes decode or fail cleanly.
func FuzzDecodeSELRecord(f *testing.F) {
	f.Add([]byte{0x07, 0x00, 0x02, 0x10, 0x00, 0x00, 0x60, 0x20, 0x00, 0x04, 0x09, 0x40, 0x6f, 0x00, 0xff, 0xff})
	f.Add([]byte{0x01, 0x00, 0xe0})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeSELRecord(b)
		if err == nil && len(b) < 16 {
			t.Fatalf("decoded a %d-byte record: %+v", len(b), e)
		}
		_, _ = decodeBootFlags(b)
	})
}

// FuzzNICCapacityFromFRUText: any text gives "" or "<digits>Gb".
func FuzzNICCapacityFromFRUText(f *testing.F) {
	for _, n := range []string{"NIC_FRU_OUT.txt", "NIC_FRU_OUT_ALL.txt"} {
		if b, err := os.ReadFile(filepath.Join(fixturesDir, n)); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("Product Name : 12Gb port Adapter Gb 99GbGb")
	f.Fuzz(func(t *testing.T, s string) {
		c := NICCapacityFromFRUText(s)
		if c != "" && (!strings.HasSuffix(c, "Gb") || strings.Trim(strings.TrimSuffix(c, "Gb"), "0123456789") != "") {
			t.Fatalf("capacity %q from %q", c, s)
		}
	})
}

// fixturesDir holds the real `ipmitool fru print` answers proliantutils'
// tests use (../shared beside the repository; not copied into it).
const fixturesDir = "../../../shared/fixtures/proliantutils/ipmi"

// proliantutilsFixtures returns fixturesDir, or skips when ../shared is absent.
func proliantutilsFixtures(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(fixturesDir); err != nil {
		t.Skipf("proliantutils IPMI fixtures not found (%s): ../shared is absent", fixturesDir)
	}
	return fixturesDir
}
