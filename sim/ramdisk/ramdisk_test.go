package ramdisk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

const diskSize = 8 << 20

// TestDeployAndCleanCycle is the whole in-band cycle: boot from virtual
// media (prebuilt deploy ISO + parameters floppy, as agent_ilo does),
// lookup, heartbeat, prepare_image writes the image to the disk,
// erase_devices zeroes it, power_off powers the server off.
func TestDeployAndCleanCycle(t *testing.T) {
	api := callback(t)
	tok, err := api.NewToken(nodeUUID)
	if err != nil {
		t.Fatal(err)
	}
	files := newFileServer(t)
	isoURL := files.put("deploy.iso", makeISO(t, "nofb nomodeset vga=normal boot_method=vmedia"))
	floppyURL := files.put("image-"+nodeUUID, makeFloppy(t, map[string]string{
		"ipa-api-url": api.URL(), "ipa-agent-token": tok, "boot_method": "vmedia", "BOOTIF": nodeMAC,
	}))
	img := randomBytes(t, 3<<20+123)
	imgURL := files.put("image.raw", img)
	disk := newDisk(t, diskSize)

	var (
		mu      sync.Mutex
		powered []string
	)
	rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: 50 * time.Millisecond, LookupInterval: 10 * time.Millisecond,
		WorkDir: t.TempDir(),
		PowerOff: func(_ context.Context, server string) error {
			mu.Lock()
			powered = append(powered, server)
			mu.Unlock()
			return nil
		}})
	b := boot(t, rd, ramdisk.BootEvent{Server: "gen10-0", BootDevice: "CDROM", BootMode: "UEFI",
		Media: map[string]string{"CDROM": isoURL, "FLOPPY": floppyURL}, MACs: []string{"52:54:00:00:00:99", nodeMAC}, DiskPath: disk})

	agentURL := waitAgent(t, api, 20*time.Second)
	a := rd.Agent("gen10-0")
	if a == nil || a.URL() != agentURL || a.NodeUUID() != nodeUUID {
		t.Fatalf("agent %v, heartbeat URL %s", a, agentURL)
	}
	if p := a.Params(); p["nomodeset"] != "" || p["vga"] != "normal" || p["ipa-agent-token"] != tok || p["BOOTIF"] != nodeMAC {
		t.Errorf("params from ISO + floppy = %v", p)
	}
	c := &agent.Client{}

	res := runWait(t, c, agentURL, tok, "standby.prepare_image", map[string]any{"image_info": map[string]any{
		"id": "img-1", "urls": []any{imgURL}, "checksum": md5hex(img), "disk_format": "raw", "container_format": "bare",
	}})
	if res.CommandStatus != agent.StatusSucceeded || res.CommandName != "prepare_image" {
		t.Fatalf("prepare_image: %+v", res)
	}
	diskHas(t, disk, img, diskSize)

	ctx := context.Background()
	list, err := c.List(ctx, agentURL, tok)
	if err != nil || len(list) != 1 || list[0].ID != res.ID || list[0].CommandStatus != agent.StatusSucceeded {
		t.Fatalf("commands = %+v, %v", list, err)
	}
	if r, err := c.Run(ctx, agentURL, tok, "standby.get_partition_uuids", map[string]any{}, true); err != nil ||
		r.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("get_partition_uuids: %+v %v", r, err)
	}

	steps, err := c.Run(ctx, agentURL, tok, "clean.get_clean_steps", map[string]any{"node": map[string]any{"uuid": nodeUUID}, "ports": []any{}}, true)
	if err != nil {
		t.Fatal(err)
	}
	prio := map[string]float64{}
	result, _ := steps.CommandResult.(map[string]any)
	cs, _ := result["clean_steps"].(map[string]any)
	generic, _ := cs["GenericHardwareManager"].([]any)
	for _, s := range generic {
		m := s.(map[string]any)
		prio[m["step"].(string)] = m["priority"].(float64)
		if m["interface"] != "deploy" {
			t.Errorf("clean step %v not on the deploy interface", m)
		}
	}
	if prio["erase_devices"] != 10 || prio["erase_devices_metadata"] != 99 {
		t.Fatalf("clean steps = %v", steps.CommandResult)
	}
	version, _ := result["hardware_manager_version"].(map[string]any)

	res = runWait(t, c, agentURL, tok, "clean.execute_clean_step", map[string]any{
		"step": map[string]any{"step": "erase_devices", "interface": "deploy", "priority": 10},
		"node": map[string]any{"uuid": nodeUUID}, "ports": []any{}, "clean_version": version,
	})
	if res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("erase_devices: %+v", res)
	}
	diskZero(t, disk, diskSize)

	// Like Ironic: power_off is sent asynchronously, then the power state
	// is watched; the ramdisk disappears with the power.
	res, err = c.Run(ctx, agentURL, tok, "standby.power_off", map[string]any{}, false)
	if err != nil || res.CommandName != "power_off" {
		t.Fatalf("power_off: %+v %v", res, err)
	}
	select {
	case <-b.done:
		if b.err != nil {
			t.Fatalf("Boot returned %v after power off", b.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ramdisk still running after standby.power_off")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(powered) != 1 || powered[0] != "gen10-0" {
		t.Fatalf("PowerOff calls = %v", powered)
	}
	if rd.Agent("gen10-0") != nil {
		t.Error("agent still registered after power off")
	}
}

// TestCmdlineOnlyParams: everything on the kernel command line (ISO built
// with the parameters, no floppy), as Ironic does when it builds the ISO.
func TestCmdlineOnlyParams(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	files := newFileServer(t)
	isoURL := files.put("boot.iso", makeISO(t, "nofb ipa-api-url="+api.URL()+" ipa-agent-token="+tok+" ir_pub_id=x"))
	rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: 50 * time.Millisecond, LookupInterval: 10 * time.Millisecond})
	boot(t, rd, ramdisk.BootEvent{Server: "gen9-0", BootDevice: "CDROM", Media: map[string]string{"CDROM": isoURL}, MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20)})
	waitAgent(t, api, 20*time.Second)
}

func TestBootNotRamdisk(t *testing.T) {
	files := newFileServer(t)
	plainISO := files.put("plain.iso", makeISO(t, "root=/dev/ram0 text"))
	rd := ramdisk.New(ramdisk.Options{})
	tests := []struct {
		name    string
		ev      ramdisk.BootEvent
		wantErr error
		errText string
	}{
		{"disk boot", ramdisk.BootEvent{Server: "s", BootDevice: "HDD", Media: map[string]string{"CDROM": plainISO}}, ramdisk.ErrNotRamdisk, "boots from HDD"},
		{"CDROM without media", ramdisk.BootEvent{Server: "s", BootDevice: "CDROM"}, ramdisk.ErrNotRamdisk, "without virtual media"},
		{"ISO without ipa-api-url", ramdisk.BootEvent{Server: "s", BootDevice: "CDROM", Media: map[string]string{"CDROM": plainISO}}, ramdisk.ErrNotRamdisk, "no ipa-api-url"},
		{"ISO 404", ramdisk.BootEvent{Server: "s", BootDevice: "CDROM", Media: map[string]string{"CDROM": files.URL + "/missing.iso?temp_url_sig=deadbeefsecret"}}, nil, "status 404"},
		{"floppy 404", ramdisk.BootEvent{Server: "s", BootDevice: "CDROM", Media: map[string]string{"CDROM": plainISO, "FLOPPY": files.URL + "/nofloppy"}}, nil, "virtual floppy"},
		{"not an ISO", ramdisk.BootEvent{Server: "s", BootDevice: "CDROM", Media: map[string]string{"CDROM": files.put("junk.iso", []byte("junk"))}}, nil, "virtual CDROM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := rd.Boot(context.Background(), tc.ev)
			if err == nil || !strings.Contains(err.Error(), tc.errText) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Boot = %v, want error containing %q", err, tc.errText)
			}
			if tc.wantErr == nil && errors.Is(err, ramdisk.ErrNotRamdisk) {
				t.Fatalf("media failure reported as not-a-ramdisk: %v", err)
			}
			if strings.Contains(err.Error(), "deadbeefsecret") {
				t.Fatalf("error leaks the temp URL signature: %v", err)
			}
		})
	}
}

// TestInjectedFailures: each injectable failure and what the conductor sees.
func TestInjectedFailures(t *testing.T) {
	files := newFileServer(t)
	img := randomBytes(t, 64<<10)
	imgURL := files.put("image.raw", img)
	good := map[string]any{"id": "img", "urls": []any{imgURL}, "checksum": md5hex(img)}
	tests := []struct {
		name     string
		failures ramdisk.Failures
		info     map[string]any
		command  string
		wantType string
		wantText string
	}{
		{"checksum mismatch", ramdisk.Failures{ChecksumMismatch: true}, good, "standby.prepare_image", "ImageChecksumError", "verification checksum: " + md5hex(img)},
		{"404 on download", ramdisk.Failures{DownloadNotFound: true}, good, "standby.prepare_image", "ImageDownloadError", "Received status code 404"},
		{"real 404", ramdisk.Failures{}, map[string]any{"id": "img", "urls": []any{files.URL + "/gone.raw?temp_url_sig=deadbeefsecret"}, "checksum": md5hex(img)}, "standby.prepare_image", "ImageDownloadError", "status code 404"},
		{"wrong checksum", ramdisk.Failures{}, map[string]any{"id": "img", "urls": []any{imgURL}, "os_hash_algo": "sha256", "os_hash_value": strings.Repeat("ab", 32)}, "standby.prepare_image", "ImageChecksumError", "image ID: img"},
		{"command failure", ramdisk.Failures{FailCommands: []string{"prepare_image"}}, good, "standby.prepare_image", "CommandExecutionError", "injected failure"},
		{"clean step failure", ramdisk.Failures{FailCommands: []string{"clean.execute_clean_step"}}, nil, "clean.execute_clean_step", "CommandExecutionError", "injected failure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := callback(t)
			tok, _ := api.NewToken(nodeUUID)
			disk := newDisk(t, 1<<20)
			a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "gen8-0", APIURLs: []string{api.URL()}, Token: tok,
				MACs: []string{nodeMAC}, DiskPath: disk, Failures: tc.failures, HeartbeatInterval: 50 * time.Millisecond, WorkDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.Stop)
			url := waitAgent(t, api, 20*time.Second)
			params := map[string]any{"image_info": tc.info}
			if tc.info == nil {
				params = map[string]any{"step": map[string]any{"step": "erase_devices"}}
			}
			res := runWait(t, &agent.Client{}, url, tok, tc.command, params)
			if res.CommandStatus != agent.StatusFailed || errorType(res) != tc.wantType || !strings.Contains(res.ErrorMessage(), tc.wantText) {
				t.Fatalf("result %+v (%s), want FAILED %s containing %q", res, res.ErrorMessage(), tc.wantType, tc.wantText)
			}
			if strings.Contains(res.ErrorMessage(), "deadbeefsecret") {
				t.Fatalf("error leaks the temp URL signature: %s", res.ErrorMessage())
			}
			// the agent is not busy after a failure
			if r, err := (&agent.Client{}).Run(context.Background(), url, tok, "clean.get_clean_steps", map[string]any{}, true); err != nil || r.CommandStatus != agent.StatusSucceeded {
				t.Fatalf("next command after failure: %+v %v", r, err)
			}
		})
	}
}

func TestNoHeartbeatFailure(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "gen8-0", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20), Failures: ramdisk.Failures{NoHeartbeat: true},
		HeartbeatInterval: 10 * time.Millisecond, LookupInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for a.NodeUUID() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no lookup: %s", a.LastError())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := api.WaitHeartbeat(ctx, nodeUUID, time.Time{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHeartbeat = %v, want a timeout", err)
	}
	if a.Heartbeats() != 0 {
		t.Fatalf("%d heartbeats", a.Heartbeats())
	}
}

// TestWrongToken: a ramdisk with the wrong token is refused and never
// becomes the node's agent; the refusal does not echo either token.
func TestWrongToken(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	wrong := strings.Repeat("f", len(tok))
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "gen8-0", APIURLs: []string{api.URL()}, Token: wrong,
		MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20), HeartbeatInterval: 10 * time.Millisecond, LookupInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(a.LastError(), "status 403") {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat not refused: %q", a.LastError())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Contains(a.LastError(), tok) || strings.Contains(a.LastError(), wrong) {
		t.Fatalf("refusal echoes a token: %s", a.LastError())
	}
	if _, ok := api.Agent(nodeUUID); ok {
		t.Fatal("agent with a wrong token was recorded")
	}
	// The agent API itself refuses commands without its token.
	if _, err := (&agent.Client{}).Run(context.Background(), a.URL(), "", "clean.get_clean_steps", map[string]any{}, true); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("command without token: %v", err)
	}
}

func TestAgentAPIErrors(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	files := newFileServer(t)
	files.put("slow.raw", randomBytes(t, 1024))
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20), HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := waitAgent(t, api, 20*time.Second)
	c := &agent.Client{}
	tests := []struct {
		name, cmd string
		params    map[string]any
		status    int
	}{
		{"unknown extension", "frob.nicate", map[string]any{}, 404},
		{"unknown command", "standby.frobnicate", map[string]any{}, 400},
		{"bad name", "nodot", map[string]any{}, 400},
		{"no image_info", "standby.prepare_image", map[string]any{}, 400},
		{"no checksum", "standby.prepare_image", map[string]any{"image_info": map[string]any{"id": "x", "urls": []any{"http://127.0.0.1/x"}}}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Run(context.Background(), url, tok, tc.cmd, tc.params, true)
			var he *agent.HTTPError
			if !errors.As(err, &he) || he.Status != tc.status {
				t.Fatalf("err = %v, want HTTP %d", err, tc.status)
			}
			if strings.Contains(err.Error(), tok) {
				t.Fatal("error contains the token")
			}
		})
	}
	if _, err := c.Get(context.Background(), url, tok, "no-such-id", false); err == nil {
		t.Error("GET of an unknown command id succeeded")
	}
	// Token-bearing transport errors never show the token.
	if _, err := c.List(context.Background(), "http://127.0.0.1:1", tok); err == nil || strings.Contains(err.Error(), tok) {
		t.Fatalf("unreachable agent error = %v", err)
	}
}

func TestAgentBusy(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	block := make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(block)
		}
	}
	defer release()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20), HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := waitAgent(t, api, 20*time.Second)
	c := &agent.Client{}
	ctx := context.Background()
	res, err := c.Run(ctx, url, tok, "standby.prepare_image", map[string]any{"image_info": map[string]any{"id": "x", "urls": []any{srv.URL + "/img"}, "checksum": md5hex(nil)}}, false)
	if err != nil || res.CommandStatus != agent.StatusRunning {
		t.Fatalf("async prepare_image: %+v %v", res, err)
	}
	_, err = c.Run(ctx, url, tok, "clean.get_clean_steps", map[string]any{}, true)
	var he *agent.HTTPError
	if !errors.As(err, &he) || he.Status != 409 {
		t.Fatalf("second command while busy: %v, want 409", err)
	}
	release()
	res, err = c.Get(ctx, url, tok, res.ID, true)
	if err != nil || res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("after release: %+v %v", res, err)
	}
}

func TestQcow2Image(t *testing.T) {
	testenv.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	raw := randomBytes(t, 2<<20)
	rawPath := filepath.Join(dir, "img.raw")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	qPath := filepath.Join(dir, "img.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", rawPath, qPath).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	qcow, err := os.ReadFile(qPath)
	if err != nil {
		t.Fatal(err)
	}
	files := newFileServer(t)
	u := files.put("img.qcow2", qcow)
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	disk := newDisk(t, diskSize)
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: disk, HeartbeatInterval: 50 * time.Millisecond, WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := waitAgent(t, api, 20*time.Second)
	res := runWait(t, &agent.Client{}, url, tok, "standby.prepare_image", map[string]any{"image_info": map[string]any{
		"id": "q", "urls": []any{u}, "os_hash_algo": "sha512", "os_hash_value": sha512hex(qcow), "disk_format": "qcow2"}})
	if res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("prepare_image qcow2: %+v %s", res, res.ErrorMessage())
	}
	diskHas(t, disk, raw, diskSize)
}

func TestImageTooLarge(t *testing.T) {
	files := newFileServer(t)
	img := randomBytes(t, 2<<20)
	u := files.put("big.raw", img)
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20), HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := waitAgent(t, api, 20*time.Second)
	res := runWait(t, &agent.Client{}, url, tok, "standby.prepare_image", map[string]any{"image_info": map[string]any{"id": "b", "urls": []any{u}, "checksum": md5hex(img)}})
	if res.CommandStatus != agent.StatusFailed || !strings.Contains(res.ErrorMessage(), "larger than the disk") {
		t.Fatalf("%+v %s", res, res.ErrorMessage())
	}
}

// TestPartitionUUIDs checks get_partition_uuids against a GPT written by
// go-diskfs and an MBR signature.
func TestPartitionUUIDs(t *testing.T) {
	dir := t.TempDir()
	gptPath := filepath.Join(dir, "gpt.raw")
	d, err := diskfs.Create(gptPath, 16<<20, diskfs.SectorSizeDefault)
	if err != nil {
		t.Fatal(err)
	}
	table := &gpt.Table{ProtectiveMBR: true, Partitions: []*gpt.Partition{
		{Index: 1, Start: 2048, End: 4095, Type: gpt.EFISystemPartition, Name: "EFI"},
		{Index: 2, Start: 4096, End: 30000, Type: gpt.LinuxFilesystem, Name: "root"},
	}}
	if err := d.Partition(table); err != nil {
		t.Fatal(err)
	}
	pt, err := d.GetPartitionTable()
	if err != nil {
		t.Fatal(err)
	}
	g := pt.(*gpt.Table)
	d.Close()
	mbrPath := filepath.Join(dir, "mbr.raw")
	mbr := make([]byte, 4096)
	copy(mbr[440:], []byte{0x78, 0x56, 0x34, 0x12})
	mbr[510], mbr[511] = 0x55, 0xaa
	if err := os.WriteFile(mbrPath, mbr, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, disk, root, esp string
	}{
		{"gpt", gptPath, strings.ToLower(g.GUID), strings.ToLower(g.Partitions[0].GUID)},
		{"mbr", mbrPath, "0x12345678", ""},
		{"blank", newDisk(t, 1<<20), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := callback(t)
			tok, _ := api.NewToken(nodeUUID)
			a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
				MACs: []string{nodeMAC}, DiskPath: tc.disk, HeartbeatInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Stop()
			url := waitAgent(t, api, 20*time.Second)
			res, err := (&agent.Client{}).Run(context.Background(), url, tok, "standby.get_partition_uuids", map[string]any{}, true)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := res.CommandResult.(map[string]any)
			root, _ := m["root uuid"].(string)
			esp, _ := m["efi system partition uuid"].(string)
			if root != tc.root || esp != tc.esp {
				t.Fatalf("root %q esp %q, want %q %q (%v)", root, esp, tc.root, tc.esp, m)
			}
			if tc.esp != "" {
				bl := runWait(t, &agent.Client{}, url, tok, "image.install_bootloader", map[string]any{"root_uuid": root, "efi_system_part_uuid": esp, "target_boot_mode": "uefi"})
				if bl.CommandStatus != agent.StatusSucceeded {
					t.Fatalf("install_bootloader: %+v", bl)
				}
			}
		})
	}
}

func TestEraseMetadataAndCleanVersion(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	disk := newDisk(t, 4<<20)
	full := randomBytes(t, 4<<20)
	if err := os.WriteFile(disk, full, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: disk, HeartbeatInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := waitAgent(t, api, 20*time.Second)
	c := &agent.Client{}
	res := runWait(t, c, url, tok, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "erase_devices_metadata"}})
	if res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("%+v", res)
	}
	got, _ := os.ReadFile(disk)
	if !isZero(got[:1<<20]) || !isZero(got[3<<20:]) || string(got[1<<20:3<<20]) != string(full[1<<20:3<<20]) {
		t.Fatal("erase_devices_metadata must zero the first and last MiB only")
	}
	res = runWait(t, c, url, tok, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "erase_devices"},
		"clean_version": map[string]any{"generic_hardware_manager": "0.1"}})
	if res.CommandStatus != agent.StatusCleanVersionMismatch {
		t.Fatalf("clean version mismatch: %+v", res)
	}
	res = runWait(t, c, url, tok, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "burnin_cpu"}})
	if res.CommandStatus != agent.StatusFailed {
		t.Fatalf("unknown clean step: %+v", res)
	}
}

func TestBootCancelStopsAgent(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	files := newFileServer(t)
	isoURL := files.put("boot.iso", makeISO(t, "ipa-api-url="+api.URL()+" ipa-agent-token="+tok))
	before := runtime.NumGoroutine()
	rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: 20 * time.Millisecond, LookupInterval: 10 * time.Millisecond})
	b := boot(t, rd, ramdisk.BootEvent{Server: "s", BootDevice: "CDROM", Media: map[string]string{"CDROM": isoURL}, MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20)})
	url := waitAgent(t, api, 20*time.Second)
	if err := b.stop(t); err != nil {
		t.Fatalf("Boot = %v", err)
	}
	if _, err := (&agent.Client{}).List(context.Background(), url, tok); err == nil {
		t.Fatal("agent API still answers after power off")
	}
	rd.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d > %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
