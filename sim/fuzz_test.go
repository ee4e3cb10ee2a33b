package sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRIBCLRequest feeds arbitrary bodies to POST /ribcl: no panic, and every
// document of the answer stream is well-formed XML on its own (proliantutils
// parses them one by one).
func FuzzRIBCLRequest(f *testing.F) {
	noNet := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("fuzz: no network")
	}}}
	s, err := New(Options{Nodes: []NodeSpec{{Generation: Gen8, Count: 1}}, Password: "password", DiskSize: 1 << 20, HTTPClient: noNet})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	srv := s.Server(0)
	env := func(section, mode, cmd string) string {
		return `<RIBCL VERSION="2.0"><LOGIN USER_LOGIN="Administrator" PASSWORD="password"><` + section + ` MODE="` + mode + `">` + cmd + `</` + section + `></LOGIN></RIBCL>`
	}
	for _, seed := range []string{
		env("SERVER_INFO", "read", "<GET_PRODUCT_NAME />"),
		env("SERVER_INFO", "read", "<GET_EMBEDDED_HEALTH />"),
		env("SERVER_INFO", "write", `<SET_ONE_TIME_BOOT value="CDROM" />`),
		env("SERVER_INFO", "write", `<SET_PERSISTENT_BOOT><DEVICE VALUE="Boot0009" /><DEVICE VALUE="HDD" /></SET_PERSISTENT_BOOT>`),
		env("RIB_INFO", "write", `<INSERT_VIRTUAL_MEDIA DEVICE="CDROM" IMAGE_URL="http://127.0.0.1:1/a.iso" />`),
		env("RIB_INFO", "write", `<SET_VM_STATUS DEVICE="CDROM"><VM_BOOT_OPTION VALUE="BOOT_ONCE" /><VM_WRITE_PROTECT VALUE="YES" /></SET_VM_STATUS>`),
		env("RIB_INFO", "read", `<GET_VM_STATUS DEVICE="FLOPPY" />`),
		env("RIB_INFO", "write", `<LICENSE><ACTIVATE KEY="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE" /></LICENSE>`),
		`<?xml version="1.0"?><RIBCL VERSION="2.0"><LOGIN USER_LOGIN="a&amp;b" PASSWORD="'"><SERVER_INFO MODE="read"><GET_HOST_DATA/></SERVER_INFO></LOGIN></RIBCL>`,
		"<RIBCL", "", "\x00\xff<",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ribcl", bytes.NewReader(body)))
		if rec.Code != http.StatusOK && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", rec.Code)
		}
		parts := strings.Split(rec.Body.String(), "<?xml")
		if len(parts) < 2 {
			t.Fatalf("no XML document in %q", rec.Body.String())
		}
		for _, p := range parts[1:] {
			dec := xml.NewDecoder(strings.NewReader("<?xml" + p))
			for {
				_, err := dec.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("answer document not well-formed: %v\n%s", err, p)
				}
			}
		}
	})
}
