package agent_test

// The conductor against an unmodified ironic-python-agent, at the protocol
// level: an HTTP stand-in answers with IPA's exact JSON, written by hand
// from IPA's source at tag 7.1.0 (stable/wallaby, the last release with
// ironic_python_agent/extensions/iscsi.py):
//
//   - extensions/base.py: BaseCommandResult serialises id, command_name,
//     command_params, command_status, command_error, command_result; a
//     synchronous command's result carries the short name
//     ("start_iscsi_target"), a failure caught by execute_command the full
//     one ("iscsi.start_iscsi_target"); an asynchronous command's string
//     result becomes {"result": "<name>: <string>"}; a non-RESTError raised
//     by an asynchronous command becomes CommandExecutionError(str(e)).
//   - errors.py: RESTError serialises type, code, message, details;
//     ISCSIError's details repeat its message; ISCSICommandError adds
//     ". Failed with exit code N. stdout: … stderr: …".
//   - api/app.py: POST /v1/commands/?wait=…&agent_token=… with
//     {"name", "params"}; errors raised out of execute_command
//     (InvalidContentError 400, RequestedObjectNotFoundError 404,
//     AgentIsBusy 409, and the JSON encoder's own TypeError on an
//     unserialisable command_error, 500) answer
//     {"faultcode": "Client"|"Server", "faultstring": str(exc)}.
//   - extensions/iscsi.py: start_iscsi_target(iqn=None,
//     wipe_disk_metadata=False, portal_port=None) returns
//     {"iscsi_target_iqn": iqn}; no CHAP (LIO: authentication 0, tgtd: no
//     account).
//   - extensions/image.py: install_bootloader(root_uuid,
//     efi_system_part_uuid=None, prep_boot_part_uuid=None,
//     target_boot_mode='bios', ignore_bootloader_failure=None), async,
//     returns None.
//   - extensions/standby.py: prepare_image(image_info=None,
//     configdrive=None), async; _validate_image_info wants id, urls (a
//     non-empty list) and checksum or os_hash_algo + os_hash_value.
//   - ironic_api_client.py: GET / (default_version.version), GET
//     /v1/lookup?addresses=…&node_uuid=… (needs node.uuid and
//     config.heartbeat_timeout), POST /v1/heartbeat/<uuid> with
//     callback_url, agent_token (API ≥ 1.62), agent_version (≥ 1.36),
//     answered 202.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/agent"
)

// ipaRequest is one command request the stand-in received.
type ipaRequest struct {
	Method, Path, Wait, Token, Name string
	Params                          map[string]any
}

// ipaAnswer is a canned HTTP answer.
type ipaAnswer struct {
	status int
	body   string
}

// ipaStandIn answers /v1/commands/ as IPA 7.1.0 would.
type ipaStandIn struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []ipaRequest
	post ipaAnswer // answer to POST /v1/commands/
	list string    // body of GET /v1/commands/
}

func newIPAStandIn(t *testing.T, cert *tls.Certificate) *ipaStandIn {
	s := &ipaStandIn{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := ipaRequest{Method: r.Method, Path: r.URL.Path, Wait: r.URL.Query().Get("wait"), Token: r.URL.Query().Get("agent_token")}
		var a ipaAnswer
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/commands/":
			var body struct {
				Name   string         `json:"name"`
				Params map[string]any `json:"params"`
			}
			data, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(data, &body); err != nil || body.Name == "" || body.Params == nil {
				// app.py: http_exc.BadRequest('Missing or invalid name or params')
				a = ipaAnswer{400, `{"faultcode": "Client", "faultstring": "400 Bad Request: Missing or invalid name or params"}`}
			} else {
				req.Name, req.Params = body.Name, body.Params
				s.mu.Lock()
				a = s.post
				s.mu.Unlock()
			}
		case r.Method == http.MethodGet && r.URL.Path == "/v1/commands/":
			s.mu.Lock()
			a = ipaAnswer{200, s.list}
			s.mu.Unlock()
		default:
			a = ipaAnswer{404, `{"faultcode": "Client", "faultstring": "404 Not Found: The requested URL was not found on the server."}`}
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	if cert != nil { // IPA's automatic TLS
		s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

// ipaCertificate generates a certificate as IPA 7.1.0's
// tls_utils._generate_tls_certificate does: self-signed, ECDSA P-256,
// SHA-256, the IP address as its only subject alternative name, no CA
// basic constraints. It returns the PEM IPA sends as agent_verify_ca.
func ipaCertificate(t *testing.T, ip string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: ip},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// script sets the answers and forgets earlier requests.
func (s *ipaStandIn) script(post ipaAnswer, list string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.post, s.list, s.reqs = post, list, nil
}

func (s *ipaStandIn) posts() []ipaRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ipaRequest
	for _, r := range s.reqs {
		if r.Method == http.MethodPost {
			out = append(out, r)
		}
	}
	return out
}

// ipaCall makes one request to the callback API as IPA's APIClient does.
func ipaCall(t *testing.T, method, u, apiVersion string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if apiVersion != "" {
		req.Header.Set("X-OpenStack-Ironic-API-Version", apiVersion)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, u, err, data)
		}
	}
	return resp.StatusCode
}

// ipaBoot does what IPA 7.1.0's agent does against the callback API:
// version discovery, lookup, one heartbeat reporting agentVersion.
func ipaBoot(t *testing.T, api, callbackURL, token, agentVersion string) {
	t.Helper()
	if code := ipaBootCA(t, api, callbackURL, token, agentVersion, ""); code != http.StatusAccepted {
		t.Fatalf("heartbeat: %d, want 202", code)
	}
}

// ipaBootCA is ipaBoot with agent_verify_ca (IPA's automatic TLS, API ≥
// 1.68); it returns the heartbeat's HTTP status.
func ipaBootCA(t *testing.T, api, callbackURL, token, agentVersion, ca string) int {
	t.Helper()
	var root struct {
		DefaultVersion struct {
			Version string `json:"version"`
		} `json:"default_version"`
	}
	if code := ipaCall(t, http.MethodGet, api+"/", "", nil, &root); code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	// IPA sends agent_token only from 1.62 and agent_verify_ca from 1.68.
	maj, min, _ := strings.Cut(root.DefaultVersion.Version, ".")
	if maj != "1" || len(min) < 2 || min < "68" {
		t.Fatalf("default_version.version %q: IPA would not send agent_token", root.DefaultVersion.Version)
	}
	var lk struct {
		Node   map[string]any `json:"node"`
		Config map[string]any `json:"config"`
	}
	q := url.Values{"addresses": {nodeMAC}, "node_uuid": {nodeUUID}}
	if code := ipaCall(t, http.MethodGet, api+"/v1/lookup?"+q.Encode(), "1.62", nil, &lk); code != 200 {
		t.Fatalf("lookup: %d", code)
	}
	if lk.Node["uuid"] != nodeUUID {
		t.Fatalf("lookup node %v", lk.Node)
	}
	if _, ok := lk.Config["heartbeat_timeout"].(float64); !ok {
		t.Fatalf("lookup config lacks heartbeat_timeout: %v", lk.Config)
	}
	body := map[string]any{"callback_url": callbackURL, "agent_token": token}
	if agentVersion != "" {
		body["agent_version"] = agentVersion
	}
	if ca != "" {
		body["agent_verify_ca"] = ca
	}
	return ipaCall(t, http.MethodPost, api+"/v1/heartbeat/"+nodeUUID, "1.68", body, nil)
}

const ipaIQN = "iqn.2008-10.org.openstack:" + nodeUUID

// TestIPACompat drives the agent module (the conductor's side) against
// IPA 7.1.0's answers and checks the requests carry IPA's parameter names.
func TestIPACompat(t *testing.T) {
	e := newEnv(t, context.Background())
	tok := e.do(t, `return require("agent").token()`)[0].(string)
	ipa := newIPAStandIn(t, nil)

	const chapSecret = "s3cr3t-chap-0123456789"
	e.run.AddSecret(chapSecret)
	prepareRunning := `{"id": "7a7e8f6c-1d2b-4f4e-9c55-0b1e9d1c2a11", "command_name": "prepare_image",
		"command_params": {"image_info": {"id": "img"}, "configdrive": null},
		"command_status": "RUNNING", "command_error": null, "command_result": null}`
	bootloaderRunning := `{"id": "1f0e2d3c-4b5a-4697-8877-665544332211", "command_name": "install_bootloader",
		"command_params": {"root_uuid": "0a1b2c3d", "target_boot_mode": "uefi"},
		"command_status": "RUNNING", "command_error": null, "command_result": null}`
	tests := []struct {
		name       string
		version    string // agent_version of the heartbeat
		src        string // Lua returning a string, run under pcall
		post       ipaAnswer
		list       string
		wantParams []string // names of the POSTed params; nil: no POST
		wantWait   string
		want       string // the chunk's result on success
		wantCode   string // error code on failure
		wantMsg    []string
		check      func(t *testing.T, r ipaRequest)
	}{{
		name:    "start_iscsi_target succeeds",
		version: "7.1.0",
		src: `return agent.command(nil, "iscsi.start_iscsi_target",
			{ iqn = IQN, portal_port = 3260, wipe_disk_metadata = true }).command_result.iscsi_target_iqn`,
		post: ipaAnswer{200, `{"id": "0c6f1a52-2d3e-4a8b-9f00-6d2f3b1c4e5a", "command_name": "start_iscsi_target",
			"command_params": {"iqn": "` + ipaIQN + `", "portal_port": 3260, "wipe_disk_metadata": true},
			"command_status": "SUCCEEDED", "command_error": null,
			"command_result": {"iscsi_target_iqn": "` + ipaIQN + `"}}`},
		wantParams: []string{"iqn", "portal_port", "wipe_disk_metadata"},
		wantWait:   "true",
		want:       ipaIQN,
		check: func(t *testing.T, r ipaRequest) {
			if r.Params["portal_port"] != float64(3260) || r.Params["wipe_disk_metadata"] != true || r.Params["iqn"] != ipaIQN {
				t.Errorf("params %v: IPA wants portal_port a number, wipe_disk_metadata a bool", r.Params)
			}
		},
	}, {
		name:    "start_iscsi_target fails in tgtadm",
		version: "7.1.0",
		src:     `return agent.command(nil, "iscsi.start_iscsi_target", { iqn = IQN, portal_port = 3260 }).command_status`,
		post: ipaAnswer{200, `{"id": "9b8a7c6d-5e4f-4321-8abc-def012345678", "command_name": "iscsi.start_iscsi_target",
			"command_params": {"iqn": "` + ipaIQN + `", "portal_port": 3260},
			"command_status": "FAILED", "command_result": null,
			"command_error": {"type": "ISCSICommandError", "code": 500, "message": "Error starting iSCSI target",
				"details": "Error starting iSCSI target: Error when adding a new target for iqn ` + ipaIQN + `. Failed with exit code 22. stdout: . stderr: tgtadm: this target already exists\n"}}`},
		wantParams: []string{"iqn", "portal_port"},
		wantWait:   "true",
		wantCode:   "error",
		wantMsg:    []string{"start_iscsi_target failed: ISCSICommandError: Error starting iSCSI target: Error when adding a new target", "this target already exists"},
	}, {
		name:    "CHAP refused before sending to IPA 7.1.0",
		version: "7.1.0",
		src: `return agent.command(nil, "iscsi.start_iscsi_target",
			{ iqn = IQN, portal_port = 3260, chap_user = "ironic", chap_secret = CHAP }).command_status`,
		wantCode: "not_supported",
		wantMsg:  []string{"ironic-python-agent 7.1.0", "takes only iqn, wipe_disk_metadata, portal_port, not chap_secret, chap_user"},
	}, {
		name:    "CHAP refused by an IPA of unknown version",
		version: "",
		src: `return agent.command(nil, "iscsi.start_iscsi_target",
			{ iqn = IQN, portal_port = 3260, chap_user = "ironic", chap_secret = CHAP }).command_status`,
		// execute_command records the TypeError; the encoder cannot
		// serialise it and app.handle_exception answers 500.
		post:       ipaAnswer{500, `{"faultcode": "Server", "faultstring": "Object of type TypeError is not JSON serializable"}`},
		wantParams: []string{"chap_secret", "chap_user", "iqn", "portal_port"},
		wantWait:   "true",
		wantCode:   "not_supported",
		wantMsg:    []string{"does not take chap_secret, chap_user", "TypeError is not JSON serializable"},
	}, {
		name:       "IPA 8 and later have no iscsi extension",
		version:    "9.4.1",
		src:        `return agent.command(nil, "iscsi.start_iscsi_target", { iqn = IQN, portal_port = 3260 }).command_status`,
		post:       ipaAnswer{404, `{"faultcode": "Client", "faultstring": "Not found: Extension with id iscsi not found."}`},
		wantParams: []string{"iqn", "portal_port"},
		wantWait:   "true",
		wantCode:   "not_supported",
		wantMsg:    []string{"Extension with id iscsi not found", "removed its iscsi extension in 8.0.0", agent.IPAISCSIRelease},
	}, {
		name:    "prepare_image",
		version: "7.1.0",
		src: `agent.command(nil, "standby.prepare_image", { image_info = { id = "img", urls = { "http://192.0.2.9/img.raw" },
				os_hash_algo = "sha256", os_hash_value = string.rep("ab", 32), disk_format = "raw", container_format = "bare",
				stream_raw_images = true, node_uuid = NODE } }, { wait = false })
			return agent.wait_command(nil, "standby.prepare_image", { interval = 0.01, timeout = 10 }).command_result.result`,
		post: ipaAnswer{200, prepareRunning},
		list: `{"commands": [{"id": "7a7e8f6c-1d2b-4f4e-9c55-0b1e9d1c2a11", "command_name": "prepare_image",
			"command_params": {"image_info": {"id": "img"}, "configdrive": null}, "command_status": "SUCCEEDED", "command_error": null,
			"command_result": {"result": "prepare_image: image (img) written to device /dev/sda root_uuid=0x3a2b1c0d"}}]}`,
		wantParams: []string{"image_info"},
		wantWait:   "false",
		want:       "prepare_image: image (img) written to device /dev/sda root_uuid=0x3a2b1c0d",
		check: func(t *testing.T, r ipaRequest) {
			info, _ := r.Params["image_info"].(map[string]any)
			if urls, ok := info["urls"].([]any); !ok || len(urls) != 1 {
				t.Errorf("image_info.urls %v: IPA wants a non-empty list", info["urls"])
			}
			for _, k := range []string{"id", "os_hash_algo", "os_hash_value", "disk_format", "stream_raw_images", "node_uuid"} {
				if _, ok := info[k]; !ok {
					t.Errorf("image_info lacks %s: %v", k, info)
				}
			}
		},
	}, {
		name:       "prepare_image refused by IPA's validator",
		version:    "7.1.0",
		src:        `return agent.command(nil, "standby.prepare_image", { image_info = { id = "img" } }, { wait = false }).command_status`,
		post:       ipaAnswer{400, `{"faultcode": "Client", "faultstring": "Invalid command parameters: Image is missing 'urls' field."}`},
		wantParams: []string{"image_info"},
		wantWait:   "false",
		wantCode:   "invalid_argument",
		wantMsg:    []string{"HTTP 400", "Image is missing 'urls' field"},
	}, {
		name:    "install_bootloader",
		version: "7.1.0",
		src: `agent.command(nil, "image.install_bootloader", { root_uuid = "0a1b2c3d", efi_system_part_uuid = "5e6f7a8b",
				target_boot_mode = "uefi" }, { wait = false })
			return agent.wait_command(nil, "image.install_bootloader", { interval = 0.01, timeout = 10 }).command_status`,
		post: ipaAnswer{200, bootloaderRunning},
		list: `{"commands": [` + prepareRunning + `, {"id": "1f0e2d3c-4b5a-4697-8877-665544332211", "command_name": "install_bootloader",
			"command_params": {"root_uuid": "0a1b2c3d"}, "command_status": "SUCCEEDED", "command_error": null, "command_result": null}]}`,
		wantParams: []string{"efi_system_part_uuid", "root_uuid", "target_boot_mode"},
		wantWait:   "false",
		want:       "SUCCEEDED",
	}, {
		name:    "install_bootloader fails",
		version: "7.1.0",
		src: `agent.command(nil, "image.install_bootloader", { root_uuid = "0a1b2c3d", target_boot_mode = "bios" }, { wait = false })
			return agent.wait_command(nil, "image.install_bootloader", { interval = 0.01, timeout = 10 }).command_status`,
		post: ipaAnswer{200, bootloaderRunning},
		list: `{"commands": [{"id": "1f0e2d3c-4b5a-4697-8877-665544332211", "command_name": "install_bootloader",
			"command_params": {"root_uuid": "0a1b2c3d"}, "command_status": "FAILED", "command_result": null,
			"command_error": {"type": "CommandExecutionError", "code": 500, "message": "Command execution failed",
				"details": "Installing GRUB2 boot loader to device /dev/sda failed with Unexpected error while running command.\nExit code: 1"}}]}`,
		wantParams: []string{"root_uuid", "target_boot_mode"},
		wantWait:   "false",
		wantCode:   "error",
		wantMsg:    []string{"install_bootloader failed: CommandExecutionError: Command execution failed: Installing GRUB2 boot loader"},
	}, {
		name:    "an asynchronous command refusing a parameter",
		version: "",
		src: `agent.command(nil, "image.install_bootloader", { root_uuid = "0a1b2c3d", disk_label = "gpt" }, { wait = false })
			return agent.wait_command(nil, "install_bootloader", { interval = 0.01, timeout = 10 }).command_status`,
		post: ipaAnswer{200, bootloaderRunning},
		// AsyncCommandResult.run: execute_method(**params) raises TypeError,
		// recorded as CommandExecutionError(str(e)).
		list: `{"commands": [{"id": "1f0e2d3c-4b5a-4697-8877-665544332211", "command_name": "install_bootloader",
			"command_params": {"root_uuid": "0a1b2c3d", "disk_label": "gpt"}, "command_status": "FAILED", "command_result": null,
			"command_error": {"type": "CommandExecutionError", "code": 500, "message": "Command execution failed",
				"details": "install_bootloader() got an unexpected keyword argument 'disk_label'"}}]}`,
		wantParams: []string{"disk_label", "root_uuid"},
		wantWait:   "false",
		wantCode:   "not_supported",
		wantMsg:    []string{"does not take disk_label", "takes only root_uuid, efi_system_part_uuid"},
	}, {
		name:       "agent busy",
		version:    "7.1.0",
		src:        `return agent.command(nil, "standby.get_partition_uuids").command_status`,
		post:       ipaAnswer{409, `{"faultcode": "Client", "faultstring": "Agent is busy: executing command prepare_image"}`},
		wantParams: []string{},
		wantWait:   "true",
		wantCode:   "transient",
		wantMsg:    []string{"HTTP 409", "Agent is busy: executing command prepare_image"},
	}}
	e.L.SetGlobal("IQN", lua.LString(ipaIQN))
	e.L.SetGlobal("CHAP", lua.LString(chapSecret))
	e.L.SetGlobal("NODE", lua.LString(nodeUUID))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ipaBoot(t, e.api.URL(), ipa.srv.URL, tok, tc.version)
			ipa.script(tc.post, tc.list)
			out := e.do(t, `local agent = require("agent")
				local ok, r = pcall(function() `+tc.src+` end)
				if ok then return true, r end
				return false, r.code, tostring(r)`)
			if tc.wantCode == "" {
				if out[0] != "true" || out[1] != tc.want {
					t.Fatalf("got %v, want %q", out, tc.want)
				}
			} else {
				if out[0] != "false" || out[1] != tc.wantCode {
					t.Fatalf("got %v, want code %s", out, tc.wantCode)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(out[2].(string), m) {
						t.Errorf("error %q lacks %q", out[2], m)
					}
				}
				if strings.Contains(out[2].(string), "Error starting iSCSI target: Error starting iSCSI target") {
					t.Errorf("error repeats IPA's message: %q", out[2])
				}
			}
			posts := ipa.posts()
			if tc.wantParams == nil {
				if len(posts) != 0 {
					t.Fatalf("the agent got %d commands, want none: %+v", len(posts), posts)
				}
				return
			}
			if len(posts) != 1 {
				t.Fatalf("the agent got %d commands, want 1: %+v", len(posts), posts)
			}
			r := posts[0]
			var names []string
			for k := range r.Params {
				names = append(names, k)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.wantParams) && !(len(names) == 0 && len(tc.wantParams) == 0) {
				t.Errorf("params %v, want IPA's %v", names, tc.wantParams)
			}
			if r.Wait != tc.wantWait || r.Token != tok {
				t.Errorf("wait=%q token ok=%t, want wait=%q and the agent token", r.Wait, r.Token == tok, tc.wantWait)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	e.noSecrets(t, tok, chapSecret)
}

// TestIPAParams pins the signatures to IPA 7.1.0's.
func TestIPAParams(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]any
		ext     []string
		version string
		major   int
		ipa     bool
	}{
		{"iscsi.start_iscsi_target", map[string]any{"iqn": 1, "portal_port": 1, "wipe_disk_metadata": 1, "chap_user": 1, "chap_secret": 1}, []string{"chap_secret", "chap_user"}, "7.1.0", 7, true},
		{"image.install_bootloader", map[string]any{"root_uuid": 1, "efi_system_part_uuid": 1, "prep_boot_part_uuid": 1, "target_boot_mode": 1, "ignore_bootloader_failure": 1}, nil, "7.1.1.dev3", 7, true},
		{"standby.prepare_image", map[string]any{"image_info": 1, "configdrive": 1}, nil, "10.0.0", 10, true},
		{"clean.execute_clean_step", map[string]any{"step": 1, "anything": 1}, nil, "lightsout-agent-1.0", 0, false},
		{"standby.get_partition_uuids", map[string]any{"x": 1}, []string{"x"}, "", 0, false},
	}
	for _, tc := range tests {
		if got := agent.ExtensionParams(tc.name, tc.params); !slices.Equal(got, tc.ext) {
			t.Errorf("ExtensionParams(%s) = %v, want %v", tc.name, got, tc.ext)
		}
		if major, ok := agent.IPARelease(tc.version); major != tc.major || ok != tc.ipa {
			t.Errorf("IPARelease(%q) = %d, %t; want %d, %t", tc.version, major, ok, tc.major, tc.ipa)
		}
	}
}

// TestErrorMessageIPAShapes: IPA's command_error dicts summarised once.
func TestErrorMessageIPAShapes(t *testing.T) {
	tests := []struct {
		err  string
		want string
	}{
		{`{"type": "ISCSIError", "code": 500, "message": "Error starting iSCSI target", "details": "Error starting iSCSI target: Failed to create a target: x"}`,
			"ISCSIError: Error starting iSCSI target: Failed to create a target: x"},
		{`{"type": "ImageChecksumError", "code": 500, "message": "Error verifying image checksum", "details": "Image failed to verify against checksum. location: /tmp/img; image ID: img; image checksum: a; verification checksum: b"}`,
			"ImageChecksumError: Error verifying image checksum: Image failed to verify against checksum. location: /tmp/img; image ID: img; image checksum: a; verification checksum: b"},
		{`{"type": "CommandExecutionError", "code": 500, "message": "Command execution failed", "details": "Command execution failed"}`,
			"CommandExecutionError: Command execution failed"},
		{`null`, ""},
	}
	for _, tc := range tests {
		var c agent.CommandResult
		if err := json.Unmarshal([]byte(`{"command_status": "FAILED", "command_error": `+tc.err+`}`), &c); err != nil {
			t.Fatal(err)
		}
		if got := c.ErrorMessage(); got != tc.want {
			t.Errorf("ErrorMessage(%s) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestIPAAutoTLS: the callback API claims Ironic 1.72, so IPA (≥ 6.x,
// enable_auto_tls on by default) serves its API over https with a
// self-signed certificate and sends it as agent_verify_ca; the conductor
// trusts exactly that certificate, keeps the first one, and refuses a
// heartbeat changing it (as Ironic's store_agent_certificate).
func TestIPAAutoTLS(t *testing.T) {
	e := newEnv(t, context.Background())
	tok := e.do(t, `return require("agent").token()`)[0].(string)
	cert, caPEM := ipaCertificate(t, "127.0.0.1")
	ipa := newIPAStandIn(t, &cert)
	if !strings.HasPrefix(ipa.srv.URL, "https://127.0.0.1:") {
		t.Fatalf("stand-in URL %s", ipa.srv.URL)
	}
	ok := ipaAnswer{200, `{"id": "0c6f1a52-2d3e-4a8b-9f00-6d2f3b1c4e5a", "command_name": "sync", "command_params": {},
		"command_status": "SUCCEEDED", "command_error": null, "command_result": {"result": "sync completed"}}`}
	run := func() []any {
		return e.do(t, `local ok, r = pcall(require("agent").command, nil, "standby.sync")
			if ok then return true, r.command_result.result end
			return false, r.code, tostring(r)`)
	}

	// https without agent_verify_ca: the system roots do not know IPA's certificate.
	ipaBoot(t, e.api.URL(), ipa.srv.URL, tok, "7.1.0")
	ipa.script(ok, "")
	if out := run(); out[0] != "false" || out[1] != "error" || !strings.Contains(out[2].(string), "agent_verify_ca") {
		t.Fatalf("without agent_verify_ca: %v, want a certificate error", out)
	}

	// A new token (a new ramdisk boot): the first CA is kept.
	tok = e.do(t, `return require("agent").token()`)[0].(string)
	if code := ipaBootCA(t, e.api.URL(), ipa.srv.URL, tok, "7.1.0", caPEM); code != http.StatusAccepted {
		t.Fatalf("heartbeat with agent_verify_ca: %d", code)
	}
	if out := run(); out[0] != "true" || out[1] != "sync completed" {
		t.Fatalf("with agent_verify_ca: %v", out)
	}
	_, otherPEM := ipaCertificate(t, "127.0.0.1")
	if code := ipaBootCA(t, e.api.URL(), ipa.srv.URL, tok, "7.1.0", otherPEM); code != http.StatusBadRequest {
		t.Fatalf("heartbeat changing agent_verify_ca: %d, want 400", code)
	}
	if code := ipaBootCA(t, e.api.URL(), ipa.srv.URL, tok, "7.1.0", "not a certificate"); code != http.StatusBadRequest {
		t.Fatalf("heartbeat with a bad agent_verify_ca: %d, want 400", code)
	}
	if code := ipaBootCA(t, e.api.URL(), ipa.srv.URL, tok, "7.1.0", ""); code != http.StatusAccepted {
		t.Fatalf("heartbeat without agent_verify_ca: %d", code)
	}
	if out := run(); out[0] != "true" {
		t.Fatalf("after heartbeats keeping the CA: %v", out)
	}
	// A new token (a new ramdisk boot) may bring a new certificate; an
	// agent presenting another one than it sent is refused.
	cert2, _ := ipaCertificate(t, "127.0.0.1")
	impostor := newIPAStandIn(t, &cert2)
	impostor.script(ok, "")
	tok = e.do(t, `return require("agent").token()`)[0].(string)
	if code := ipaBootCA(t, e.api.URL(), impostor.srv.URL, tok, "7.1.0", otherPEM); code != http.StatusAccepted {
		t.Fatalf("heartbeat of a new token with a new agent_verify_ca: %d", code)
	}
	if out := run(); out[0] != "false" || out[1] != "error" || !strings.Contains(out[2].(string), "certificate") {
		t.Fatalf("impostor: %v, want a certificate error", out)
	}
	if n := len(impostor.posts()); n != 0 {
		t.Fatalf("the impostor got %d commands", n)
	}
}
