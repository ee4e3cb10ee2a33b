package ribcl

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

const ok = `<?xml version="1.0"?>
<RIBCL VERSION="2.23">
<RESPONSE
    STATUS="0x0000"
    MESSAGE='No error'
     />
</RIBCL>
`

func doc(inner string) string {
	return "<?xml version=\"1.0\"?>\n<RIBCL VERSION=\"2.23\">\n<RESPONSE STATUS=\"0x0000\" MESSAGE='No error' />\n" + inner + "\n</RIBCL>\n"
}

func errDoc(status, msg string) string {
	return "<?xml version=\"1.0\"?>\n<RIBCL VERSION=\"2.23\">\n<RESPONSE STATUS=\"" + status + "\" MESSAGE='" + msg + "' />\n</RIBCL>\n"
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		data    string // name of the first data child, "" for none
		message string
		status  int // expected StatusError status, -1 none
		format  bool
	}{
		{"multi document with data in the middle", ok + doc(`<GET_PRODUCT_NAME><PRODUCT_NAME VALUE ="ProLiant DL380 Gen8"/></GET_PRODUCT_NAME>`) + ok, "GET_PRODUCT_NAME", "", -1, false},
		{"message kept", ok + errDoc("0x0000", "Server being reset.") + ok, "", "Server being reset.", -1, false},
		{"bare CR after declaration", "<?xml version=\"1.0\"?>\r<RIBCL VERSION=\"2.23\"><RESPONSE STATUS=\"0x0000\" MESSAGE='No error'/></RIBCL>\r\n", "", "", -1, false},
		{"lower-case hex status", ok + errDoc("0x005f", "Login failed."), "", "", 0x5F, false},
		{"status without 0x", errDoc("0035", "An invalid Virtual Media option has been given"), "", "", 0x35, false},
		{"error stops before later data", errDoc("0x0004", "Password is too short.") + doc(`<X/>`), "", "", 4, false},
		{"INFORM is data", doc(`<INFORM>Integrated Lights-Out will reset at the end of the script.</INFORM>`), "INFORM", "", -1, false},
		{"last data document wins", doc(`<A VALUE="1"/>`) + doc(`<B VALUE="2"/>`), "B", "", -1, false},
		{"not RIBCL root", `<?xml version="1.0"?><html><body>RIBCL disabled</body></html>`, "", "", -1, true},
		{"HTML without declaration", `<!DOCTYPE html><html></html>`, "", "", -1, true},
		{"empty body", "", "", "", -1, true},
		{"truncated document", `<?xml version="1.0"?><RIBCL VERSION="2.23"><RESPONSE STATUS="0x0000"`, "", "", -1, true},
		{"bad status", errDoc("zz", "x"), "", "", -1, true},
		{"self-closed RIBCL", `<?xml version="1.0"?><RIBCL VERSION="2.22"/>`, "", "", -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.body))
			var se *StatusError
			var fe *FormatError
			switch {
			case tc.format:
				if !asErr(err, &fe) {
					t.Fatalf("want FormatError, got %v", err)
				}
				return
			case tc.status >= 0:
				if !asErr(err, &se) || se.Status != tc.status {
					t.Fatalf("want status 0x%X, got %v", tc.status, err)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			}
			got := ""
			if r.Data != nil {
				for _, c := range r.Data.Children {
					if c.Name != "RESPONSE" {
						got = c.Name
						break
					}
				}
			}
			if got != tc.data || r.Message != tc.message {
				t.Fatalf("data %q message %q, want %q %q", got, r.Message, tc.data, tc.message)
			}
		})
	}
}

func asErr[T error](err error, target *T) bool {
	if err == nil {
		return false
	}
	e, ok := err.(T)
	if ok {
		*target = e
	}
	return ok
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status  int
		msg     string
		code    iloapi.Kind
		unavail bool
	}{
		{0x5F, "Login failed.", iloapi.KindLoginFailed, false},
		{0x0A, "whatever", iloapi.KindLoginFailed, false},
		{0x01, "User login name was not found", iloapi.KindLoginFailed, false},
		{0x3C, "Feature not supported - GET_PENDING_BOOT_MODE", iloapi.KindNotSupported, false},
		{0x01, "Syntax error: Line #0: syntax error near \">\" in the line: \" <GET_X />\"", iloapi.KindNotSupported, false},
		{0x01, "RIBCL is disabled. Enable it in the iLO settings.", iloapi.KindNotSupported, true},
		{0x35, "An invalid Virtual Media option has been given", iloapi.KindILO, false},
		{0x04, "Password is too short.", iloapi.KindILO, false},
		{0x2E, "License key error", iloapi.KindILO, false},
		{0x0F, "iLO busy, try again later", iloapi.KindTransient, false},
	}
	for _, tc := range tests {
		err := classify("op", &StatusError{Status: tc.status, Message: tc.msg})
		if got := iloapi.KindOf(err); got != tc.code {
			t.Errorf("0x%X %q: code %s, want %s (%v)", tc.status, tc.msg, got, tc.code, err)
		}
		if iloapi.IsUnavailable(err) != tc.unavail {
			t.Errorf("0x%X %q: unavailable %v", tc.status, tc.msg, !tc.unavail)
		}
		if tc.code == iloapi.KindILO && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ilo_error %v lacks the iLO message", err)
		}
	}
	if iloapi.KindOf(classify("op", &FormatError{"x"})) != iloapi.KindNotSupported || !iloapi.IsUnavailable(classify("op", &FormatError{"x"})) {
		t.Error("format error should say RIBCL unavailable")
	}
}

func TestStringToBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"8192 MB", 8192 << 20, false},
		{"16 GB", 16 << 30, false},
		{"99GB", 99 << 30, false},
		{"2097152 KB", 2 << 30, false},
		{"1 TB", 1 << 40, false},
		{"512", 512, false},
		{"N/A", 0, true},
		{"12 XB", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		got, err := StringToBytes(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%q: %d, %v; want %d bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

const gen8Health = `<GET_EMBEDDED_HEALTH_DATA>
<PROCESSORS>
  <PROCESSOR><LABEL VALUE="Proc 1"/><EXECUTION_TECHNOLOGY VALUE="8/8 cores; 16 threads"/></PROCESSOR>
  <PROCESSOR><LABEL VALUE="Proc 2"/><EXECUTION_TECHNOLOGY VALUE="8/8 cores; 16 threads"/></PROCESSOR>
</PROCESSORS>
<MEMORY><MEMORY_DETAILS_SUMMARY>
  <CPU_1><TOTAL_MEMORY_SIZE VALUE="16 GB"/></CPU_1>
  <CPU_2><TOTAL_MEMORY_SIZE VALUE="N/A"/></CPU_2>
  <CPU_3><TOTAL_MEMORY_SIZE VALUE="8192 MB"/></CPU_3>
</MEMORY_DETAILS_SUMMARY></MEMORY>
<NIC_INFORMATION>
  <NIC><LOCATION VALUE="Embedded"/><MAC_ADDRESS VALUE="40:A8:F0:1E:86:74"/><NETWORK_PORT VALUE="Port 1"/></NIC>
  <NIC><LOCATION VALUE="Slot 2"/><MAC_ADDRESS VALUE="40:a8:f0:1e:86:99"/><NETWORK_PORT VALUE="Port 9"/></NIC>
  <NIC><LOCATION VALUE="Embedded"/><MAC_ADDRESS VALUE="40:a8:f0:1e:86:75"/><NETWORK_PORT VALUE="Port 2"/></NIC>
</NIC_INFORMATION>
<STORAGE>
  <CONTROLLER><LOGICAL_DRIVE><CAPACITY VALUE="279 GB"/></LOGICAL_DRIVE><LOGICAL_DRIVE><CAPACITY VALUE="99 GB"/></LOGICAL_DRIVE></CONTROLLER>
  <CONTROLLER><LOGICAL_DRIVE><CAPACITY VALUE="558 GB"/></LOGICAL_DRIVE></CONTROLLER>
</STORAGE>
<FIRMWARE_INFORMATION>
  <INDEX_1><FIRMWARE_NAME VALUE="HP ProLiant System ROM"/><FIRMWARE_VERSION VALUE="11/26/2014"/></INDEX_1>
  <INDEX_2><FIRMWARE_NAME VALUE="iLO"/><FIRMWARE_VERSION VALUE="2.02 Sep 05 2014"/></INDEX_2>
</FIRMWARE_INFORMATION>
<TEMPERATURE>
  <TEMP><LABEL VALUE="01-Inlet Ambient"/><LOCATION VALUE="Ambient"/><STATUS VALUE="OK"/><CURRENTREADING VALUE="21" UNIT="Celsius"/></TEMP>
  <TEMP><LABEL VALUE="56-GPU 1"/><STATUS VALUE="Not Installed"/></TEMP>
  <TEMP><LABEL VALUE="57-GPU 2"/></TEMP>
</TEMPERATURE>
<FANS><FAN><ZONE VALUE="System"/><LABEL VALUE="Fan 1"/><STATUS VALUE="OK"/><SPEED VALUE="31" UNIT="Percentage"/></FAN></FANS>
<POWER_SUPPLIES><POWER_SUPPLY_SUMMARY><PRESENT_POWER_READING VALUE="37 Watts"/></POWER_SUPPLY_SUMMARY>
  <SUPPLY><LABEL VALUE="Power Supply 1"/><STATUS VALUE="OK"/></SUPPLY></POWER_SUPPLIES>
</GET_EMBEDDED_HEALTH_DATA>`

const g7Health = `<GET_EMBEDDED_HEALTH_DATA>
<PROCESSORS><PROCESSOR><EXECUTION_TECHNOLOGY VALUE = "4/4 cores; 8 threads"/></PROCESSOR></PROCESSORS>
<MEMORY><MEMORY_COMPONENTS>
  <MEMORY_COMPONENT><MEMORY_SIZE VALUE = "Not Installed"/></MEMORY_COMPONENT>
  <MEMORY_COMPONENT><MEMORY_SIZE VALUE = "4096 MB"/></MEMORY_COMPONENT>
  <MEMORY_COMPONENT><MEMORY_SIZE VALUE = "4096 MB"/></MEMORY_COMPONENT>
</MEMORY_COMPONENTS></MEMORY>
<NIC_INFOMATION>
  <NIC><NETWORK_PORT VALUE = "Port 1"/><MAC_ADDRESS VALUE = "e4:11:5b:a9:ae:70"/></NIC>
  <NIC><NETWORK_PORT VALUE = "Port 2"/><MAC_ADDRESS VALUE = "e4:11:5b:a9:ae:71"/></NIC>
  <iLO><NETWORK_PORT VALUE = "iLO Dedicated Network Port"/><MAC_ADDRESS VALUE = "e4:11:5b:a9:ae:73"/></iLO>
</NIC_INFOMATION>
</GET_EMBEDDED_HEALTH_DATA>`

func healthElem(t *testing.T, inner string) *Element {
	t.Helper()
	r, err := Parse([]byte(doc(inner)))
	if err != nil {
		t.Fatal(err)
	}
	return r.Data.Child("GET_EMBEDDED_HEALTH_DATA")
}

func TestEssentialProperties(t *testing.T) {
	tests := []struct {
		name, model, health string
		want                iloapi.EssentialProperties
		bad                 bool
	}{
		{"gen8", "ProLiant DL380 Gen8", gen8Health, iloapi.EssentialProperties{MemoryMB: 16384 + 8192, CPUs: 32, CPUArch: "x86_64", LocalGB: 98,
			MACs: map[string]string{"Port 1": "40:a8:f0:1e:86:74", "Port 2": "40:a8:f0:1e:86:75"}}, false},
		{"g7 tags", "ProLiant ML110 G7", g7Health, iloapi.EssentialProperties{MemoryMB: 8192, CPUs: 8, CPUArch: "x86_64", LocalGB: 0,
			MACs: map[string]string{"Port 1": "e4:11:5b:a9:ae:70", "Port 2": "e4:11:5b:a9:ae:71"}}, false},
		{"no thread count", "ProLiant DL380 Gen8", strings.Replace(gen8Health, "16 threads", "threads", 1), iloapi.EssentialProperties{}, true},
		{"no processors", "ProLiant DL380 Gen8", strings.Replace(strings.Replace(gen8Health, "<PROCESSORS>", "<X>", 1), "</PROCESSORS>", "</X>", 1), iloapi.EssentialProperties{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := EssentialProperties(tc.model, healthElem(t, tc.health))
			if tc.bad {
				if err == nil {
					t.Fatalf("want error, got %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MemoryMB != tc.want.MemoryMB || p.CPUs != tc.want.CPUs || p.LocalGB != tc.want.LocalGB || p.CPUArch != tc.want.CPUArch || len(p.MACs) != len(tc.want.MACs) {
				t.Fatalf("got %+v want %+v", p, tc.want)
			}
			for k, v := range tc.want.MACs {
				if p.MACs[k] != v {
					t.Fatalf("mac %s = %q want %q", k, p.MACs[k], v)
				}
			}
		})
	}
}

func TestLocalGBWithoutDrives(t *testing.T) {
	for _, inner := range []string{
		`<GET_EMBEDDED_HEALTH_DATA/>`,
		`<GET_EMBEDDED_HEALTH_DATA><STORAGE/></GET_EMBEDDED_HEALTH_DATA>`,
		`<GET_EMBEDDED_HEALTH_DATA><STORAGE><CONTROLLER><LABEL VALUE="x"/></CONTROLLER></STORAGE></GET_EMBEDDED_HEALTH_DATA>`,
	} {
		if n, err := LocalGB(healthElem(t, inner)); err != nil || n != 0 {
			t.Errorf("%s: %d %v, want 0", inner, n, err)
		}
	}
}

// fakeILO is a minimal RIBCL endpoint on an httptest TLS server.
type fakeILO struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []string
	answers map[string]string // command name -> body
	fail503 int               // answer 503 this many times first
}

func (f *fakeILO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/ribcl" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Content-Type") != "" {
		f.t.Errorf("RIBCL request has a Content-Type %q", r.Header.Get("Content-Type"))
	}
	if r.Header.Get("Content-Length") != "" && r.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
		f.t.Errorf("bad content length")
	}
	f.reqs = append(f.reqs, string(b))
	if f.fail503 > 0 {
		f.fail503--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	root, err := parseDoc(bytes.TrimSpace(b))
	if err != nil || root.Name != "RIBCL" {
		f.t.Errorf("bad request %q: %v", b, err)
		return
	}
	login := root.Child("LOGIN")
	if pw, _ := login.Attr("PASSWORD"); pw != "s3cr&t" {
		io.WriteString(w, ok+errDoc("0x005F", "Login failed."))
		return
	}
	section := login.Children[0]
	name := section.Children[0].Name
	ans, found := f.answers[name]
	if !found {
		ans = ok + ok + ok
	}
	io.WriteString(w, ok+ans)
}

func (f *fakeILO) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func newClient(t *testing.T, f *fakeILO, password string, timeout time.Duration) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	tr, err := iloapi.NewTransport(iloapi.Options{Host: host, Port: p, Username: "Administrator", Password: password,
		Timeout: timeout, Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.MinBackoff, tr.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	t.Cleanup(tr.Close)
	c := New(tr)
	c.ResetSettle, c.ResetPollInterval = time.Millisecond, 5*time.Millisecond
	return c
}

func TestClientRequests(t *testing.T) {
	f := &fakeILO{t: t, answers: map[string]string{
		"GET_HOST_POWER_STATUS": doc(`<GET_HOST_POWER HOST_POWER="ON"/>`),
		"GET_PRODUCT_NAME":      doc(`<GET_PRODUCT_NAME><PRODUCT_NAME VALUE ="ProLiant DL380 Gen8"/></GET_PRODUCT_NAME>`),
		"GET_VM_STATUS":         doc(`<GET_VM_STATUS VM_APPLET="DISCONNECTED" DEVICE="CDROM" BOOT_OPTION="BOOT_ALWAYS" WRITE_PROTECT="YES" IMAGE_INSERTED="NO" IMAGE_URL="" />`),
		"GET_ONE_TIME_BOOT":     doc(`<ONE_TIME_BOOT><BOOT_TYPE VALUE="Normal"/></ONE_TIME_BOOT>`),
		"GET_PERSISTENT_BOOT": doc(`<PERSISTENT_BOOT>
<DEVICE value="Boot000B" DESCRIPTION="iLO Virtual USB 2 : HP iLO Virtual USB CD/DVD ROM"/>
<DEVICE value="Boot0007" DESCRIPTION="Embedded SAS : Smart Array P830i Controller - RAID 1 Logical Drive( Target:0, Lun:0)"/>
<DEVICE value="Boot0009" DESCRIPTION="Embedded FlexibleLOM 1 Port 1 : HP Ethernet 1Gb 4-port 331FLR Adapter - NIC (IPv4) "/>
<DEVICE value="Boot0008" DESCRIPTION="Embedded FlexibleLOM 1 Port 1 : HP Ethernet 1Gb 4-port 331FLR Adapter - NIC (IPv6) "/>
</PERSISTENT_BOOT>`),
		"GET_SUPPORTED_BOOT_MODE": doc(`<GET_SUPPORTED_BOOT_MODE><SUPPORTED_BOOT_MODE VALUE="LEGACY_UEFI"/></GET_SUPPORTED_BOOT_MODE>`),
		"GET_EMBEDDED_HEALTH":     doc(gen8Health),
		"GET_ALL_LICENSES": doc(`<GET_ALL_LICENSES><LICENSE><LICENSE_TYPE VALUE="iLO Advanced"/><LICENSE_KEY VALUE="XXXXX"/>
<LICENSE_INSTALL_DATE VALUE="Mon Dec  2 15:25:28 2013"/><LICENSE_CLASS VALUE="FQL"/></LICENSE></GET_ALL_LICENSES>`),
		"GET_PENDING_BOOT_MODE": errDoc("0x003C", "Feature not supported - GET_PENDING_BOOT_MODE"),
	}}
	c := newClient(t, f, "s3cr&t", 5*time.Second)
	ctx := context.Background()

	if p, err := c.GetHostPowerStatus(ctx); err != nil || p != "ON" {
		t.Fatalf("power %q %v", p, err)
	}
	want := `<RIBCL VERSION="2.0"><LOGIN USER_LOGIN="Administrator" PASSWORD="s3cr&amp;t"><SERVER_INFO MODE="read"><GET_HOST_POWER_STATUS /></SERVER_INFO></LOGIN></RIBCL>` + "\r\n"
	if got := f.requests()[0]; got != want {
		t.Fatalf("request\n%q\nwant\n%q", got, want)
	}
	steps := []struct {
		name string
		run  func() error
		want string // substring of the last request
	}{
		{"set power off", func() error { return c.SetHostPower(ctx, "off") }, `<SERVER_INFO MODE="write"><SET_HOST_POWER HOST_POWER="No" />`},
		{"one time boot", func() error { return c.SetOneTimeBoot(ctx, "cdrom") }, `<SET_ONE_TIME_BOOT value="CDROM" />`},
		{"pending boot mode", func() error { return c.SetPendingBootMode(ctx, "uefi") }, `<SET_PENDING_BOOT_MODE value="UEFI" />`},
		{"hold", func() error { return c.HoldPwrBtn(ctx) }, `<HOLD_PWR_BTN TOGGLE="NO" />`},
		{"insert", func() error { return c.InsertVirtualMedia(ctx, "http://127.0.0.1/a.iso?x=1&y=2", "cdrom") },
			`<RIB_INFO MODE="write"><INSERT_VIRTUAL_MEDIA DEVICE="CDROM" IMAGE_URL="http://127.0.0.1/a.iso?x=1&amp;y=2" />`},
		{"set vm status", func() error { return c.SetVMStatus(ctx, "CDROM", "boot_once", "yes") },
			`<SET_VM_STATUS DEVICE="CDROM"><VM_BOOT_OPTION VALUE="BOOT_ONCE" /><VM_WRITE_PROTECT VALUE="YES" /></SET_VM_STATUS>`},
		{"persistent network in UEFI", func() error { return c.UpdatePersistentBoot(ctx, []string{"NETWORK"}) },
			`<SET_PERSISTENT_BOOT><DEVICE VALUE="Boot0009" /><DEVICE VALUE="Boot0008" /></SET_PERSISTENT_BOOT>`},
		{"persistent hdd in UEFI", func() error { return c.UpdatePersistentBoot(ctx, []string{"HDD"}) },
			`<SET_PERSISTENT_BOOT><DEVICE VALUE="Boot0007" /></SET_PERSISTENT_BOOT>`},
		{"credential", func() error { return c.ResetILOCredential(ctx, "n3w<pw>") },
			`<USER_INFO MODE="write"><MOD_USER USER_LOGIN="Administrator"><PASSWORD VALUE="n3w&lt;pw&gt;" /></MOD_USER>`},
		{"licence", func() error { return c.ActivateLicense(ctx, "AAAAA-BBBBB") }, `<LICENSE><ACTIVATE KEY="AAAAA-BBBBB" /></LICENSE>`},
		{"reset ilo polls product name", func() error { return c.ResetILO(ctx) }, `<GET_PRODUCT_NAME />`},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		reqs := f.requests()
		if last := reqs[len(reqs)-1]; !strings.Contains(last, s.want) {
			t.Fatalf("%s: last request %q lacks %q", s.name, last, s.want)
		}
	}

	// Eject is a no-op when nothing is inserted: only GET_VM_STATUS goes out.
	n := len(f.requests())
	if err := c.EjectVirtualMedia(ctx, "CDROM"); err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests(); len(reqs) != n+1 || !strings.Contains(reqs[n], "GET_VM_STATUS") {
		t.Fatalf("eject sent %d requests: %q", len(reqs)-n, reqs[n:])
	}
	if d, err := c.GetPersistentBootDevice(ctx); err != nil || d != "CDROM" {
		t.Fatalf("persistent %q %v", d, err)
	}
	if d, err := c.GetOneTimeBoot(ctx); err != nil || d != "Normal" {
		t.Fatalf("one time %q %v", d, err)
	}
	if _, err := c.GetPendingBootMode(ctx); iloapi.KindOf(err) != iloapi.KindNotSupported {
		t.Fatalf("pending boot mode on G7-style answer: %v", err)
	}
	if _, err := c.GetSecureBootMode(ctx); iloapi.KindOf(err) != iloapi.KindNotSupported {
		t.Fatalf("secure boot over RIBCL: %v", err)
	}
	p, err := c.GetEssentialProperties(ctx)
	if err != nil || p.CPUs != 32 || p.LocalGB != 98 {
		t.Fatalf("essential %+v %v", p, err)
	}
	caps, err := c.GetServerCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"server_model": "ProLiant DL380 Gen8", "ilo_firmware_version": "2.02 Sep 05 2014",
		"rom_firmware_version": "11/26/2014", "pci_gpu_devices": "2", "boot_mode_bios": "true", "boot_mode_uefi": "true"} {
		if caps[k] != v {
			t.Errorf("capability %s = %q want %q", k, caps[k], v)
		}
	}
	lic, err := c.GetAllLicenses(ctx)
	if err != nil || len(lic) != 1 || lic[0].Type != "iLO Advanced" || lic[0].Class != "FQL" {
		t.Fatalf("licences %+v %v", lic, err)
	}
	h, err := c.GetHostHealthData(ctx)
	if err != nil || len(h.Temperatures) != 3 || h.Temperatures[0].Reading != "21 Celsius" || len(h.Fans) != 1 || h.PowerReading != "37 Watts" {
		t.Fatalf("health %+v %v", h, err)
	}
	if err := c.SetOneTimeBoot(ctx, "FLOPPYDISK"); iloapi.KindOf(err) != iloapi.KindInvalid {
		t.Fatalf("bad device: %v", err)
	}
}

func TestLoginFailedAndMasking(t *testing.T) {
	f := &fakeILO{t: t}
	c := newClient(t, f, "wrong-pass", 5*time.Second)
	var dump bytes.Buffer
	c.Debug = &dump
	_, err := c.GetProductName(context.Background())
	if iloapi.KindOf(err) != iloapi.KindLoginFailed {
		t.Fatalf("want login_failed, got %v", err)
	}
	if strings.Contains(err.Error(), "wrong-pass") || strings.Contains(dump.String(), "wrong-pass") {
		t.Fatal("password leaked")
	}
	if !strings.Contains(dump.String(), `PASSWORD="*****"`) {
		t.Fatalf("dump not masked: %s", dump.String())
	}
	if len(f.requests()) != 1 {
		t.Fatalf("login failure must not be retried: %d requests", len(f.requests()))
	}
}

func TestMaskPasswords(t *testing.T) {
	in := `<LOGIN USER_LOGIN="a" PASSWORD="p1"><USER_INFO MODE="write"><MOD_USER USER_LOGIN="a"><PASSWORD VALUE='p2' /></MOD_USER>`
	out := string(MaskPasswords([]byte(in)))
	if strings.Contains(out, "p1") || strings.Contains(out, "p2") {
		t.Fatalf("not masked: %s", out)
	}
}

func TestRetry503(t *testing.T) {
	f := &fakeILO{t: t, fail503: 2, answers: map[string]string{"GET_HOST_POWER_STATUS": doc(`<GET_HOST_POWER HOST_POWER="OFF"/>`)}}
	c := newClient(t, f, "s3cr&t", 5*time.Second)
	if p, err := c.GetHostPowerStatus(context.Background()); err != nil || p != "OFF" {
		t.Fatalf("%q %v", p, err)
	}
	if n := len(f.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	// Always 503: transient within client_timeout.
	f.fail503 = 1 << 30
	c = newClient(t, f, "s3cr&t", time.Second)
	start := time.Now()
	_, err := c.GetHostPowerStatus(context.Background())
	if iloapi.KindOf(err) != iloapi.KindTransient {
		t.Fatalf("want transient, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("retries took %s, beyond client_timeout", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(ok))
	f.Add([]byte(doc(`<GET_HOST_POWER HOST_POWER="ON"/>`)))
	f.Add([]byte(errDoc("0x005F", "Login failed.")))
	f.Add([]byte("<?xml version=\"1.0\"?>\r<RIBCL VERSION=\"2.23\"><RESPONSE STATUS='0x0000' MESSAGE='x'/><A><B VALUE =\"1\"/></A></RIBCL>"))
	f.Add([]byte(`<RIBCL><RESPONSE STATUS="0x1"/></RIBCL><?xml?><RIBCL/>`))
	f.Add([]byte(doc(g7Health)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		if r.Data != nil {
			h := r.Data.Child("GET_EMBEDDED_HEALTH_DATA")
			if h == nil {
				h = r.Data
			}
			_, _ = EssentialProperties("ProLiant DL380 Gen8", h)
			_, _ = EssentialProperties("ProLiant ML110 G7", h)
			_ = HealthData(h)
			_ = Firmware(h)
			_ = GPUCount(h)
		}
	})
}
