package deployagent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/iscsi"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// iscsi.start_iscsi_target exports the hinted root disk with a real tgtd
// (CHAP on); the conductor's writer fills it; power off ends the target.
func TestStartISCSITargetWriteAndPowerOff(t *testing.T) {
	testenv.RequireTools(t, "tgtd", "tgtadm", "qemu-img")
	testenv.RequireFiles(t, "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := start(t, ctx, 16<<20)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const iqn = "iqn.2008-10.org.openstack:" + nodeUUID
	const secret = "agent-chap-secret-1"
	res, err := e.client.Run(ctx, e.agentURL, token, "iscsi.start_iscsi_target", map[string]any{
		"iqn": iqn, "portal_port": port, "chap_user": "ironic", "chap_secret": secret}, true)
	if err != nil || res.CommandStatus != "SUCCEEDED" {
		t.Fatalf("start_iscsi_target: %+v %v", res, err)
	}
	if !strings.Contains(e.console.String(), "ISCSI-TARGET-READY iqn="+iqn) {
		t.Fatalf("console: %s", e.console.String())
	}
	if strings.Contains(e.console.String(), secret) {
		t.Fatal("console shows the CHAP secret")
	}
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	img := filepath.Join(t.TempDir(), "img.raw")
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	target := iscsi.Target{Portal: "127.0.0.1:" + strconv.Itoa(port), IQN: iqn, CHAPUser: "ironic", CHAPSecret: secret}
	if _, err := iscsi.Write(ctx, target, img, iscsi.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(e.disk)
	if !bytes.Equal(got[:len(data)], data) || !bytes.Equal(got[len(data):], bytes.Repeat([]byte{0xEE}, len(got)-len(data))) {
		t.Fatal("disk does not hold the image followed by the untouched bytes")
	}
	if _, err := e.client.Run(ctx, e.agentURL, token, "standby.power_off", map[string]any{}, false); err != nil {
		t.Fatal(err)
	}
	<-e.poweroff
	if c, err := net.Dial("tcp", target.Portal); err == nil {
		c.Close()
		t.Fatal("the iSCSI portal still answers after power off")
	}
	if !strings.Contains(e.console.String(), "ISCSI-TARGET-STOPPED") {
		t.Fatalf("console: %s", e.console.String())
	}
}
