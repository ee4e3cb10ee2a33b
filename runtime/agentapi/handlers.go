package agentapi

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBody bounds request bodies (lookups carry the hardware inventory).
const maxBody = 1 << 20

// Handler returns the HTTP handler serving the callback API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.root)
	mux.HandleFunc("GET /v1", s.v1)
	mux.HandleFunc("GET /v1/{$}", s.v1)
	mux.HandleFunc("GET /v1/lookup", s.lookup)
	mux.HandleFunc("POST /v1/heartbeat/{node}", s.heartbeat)
	mux.HandleFunc("POST /v1/drivers/{driver}/vendor_passthru/{method}", s.driverPassthru)
	mux.HandleFunc("POST /v1/drivers/{driver}/vendor_passthru", s.driverPassthru)
	mux.HandleFunc("POST /v1/nodes/{node}/vendor_passthru/{method}", s.nodePassthru)
	mux.HandleFunc("POST /v1/nodes/{node}/vendor_passthru", s.nodePassthru)
	return s.versioned(mux)
}

// versioned adds the Ironic microversion headers and refuses a requested
// version above the maximum with 406, as Ironic does.
func (s *Server) versioned(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-OpenStack-Ironic-API-Minimum-Version", APIMinVersion)
		h.Set("X-OpenStack-Ironic-API-Maximum-Version", APIVersion)
		ver := APIMinVersion
		if req := r.Header.Get("X-OpenStack-Ironic-API-Version"); req != "" {
			switch {
			case strings.EqualFold(req, "latest"):
				ver = APIVersion
			case compareVersion(req, APIVersion) > 0 || compareVersion(req, APIMinVersion) < 0:
				h.Set("X-OpenStack-Ironic-API-Version", APIVersion)
				writeFault(w, http.StatusNotAcceptable, fmt.Sprintf(
					"Version %s was requested but the minor version is not supported by this service. The supported version range is: [%s, %s].",
					req, APIMinVersion, APIVersion))
				return
			default:
				ver = req
			}
		}
		h.Set("X-OpenStack-Ironic-API-Version", ver)
		h.Set("OpenStack-API-Version", "baremetal "+ver)
		next.ServeHTTP(w, r)
	})
}

// compareVersion compares "1.62"-style versions; unparsable versions
// compare as greater (and are refused).
func compareVersion(a, b string) int {
	pa, okA := parseVersion(a)
	pb, _ := parseVersion(b)
	if !okA {
		return 1
	}
	for i := range 2 {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func parseVersion(v string) ([2]int, bool) {
	maj, min, ok := strings.Cut(strings.TrimSpace(v), ".")
	if !ok {
		return [2]int{}, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil {
		return [2]int{}, false
	}
	return [2]int{a, b}, true
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id":          "v1",
		"links":       []any{map[string]any{"href": baseURL(r) + "/v1/", "rel": "self"}},
		"status":      "CURRENT",
		"min_version": APIMinVersion,
		"version":     APIVersion,
	}
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	v := versionDoc(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"name":            "lightsout agent callback API",
		"description":     "The Ironic API subset an ironic-python-agent ramdisk calls back (lookup, heartbeat).",
		"versions":        []any{v},
		"default_version": v,
	})
}

func (s *Server) v1(w http.ResponseWriter, r *http.Request) {
	v := versionDoc(r)
	v["media_types"] = []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}}
	v["lookup"] = []any{map[string]any{"href": baseURL(r) + "/v1/lookup/", "rel": "self"}}
	v["heartbeat"] = []any{map[string]any{"href": baseURL(r) + "/v1/heartbeat/", "rel": "self"}}
	writeJSON(w, http.StatusOK, v)
}

// lookup serves GET /v1/lookup?addresses=…&node_uuid=….
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var macs []string
	for _, a := range strings.Split(q.Get("addresses"), ",") {
		if m := NormalizeMAC(a); m != "" {
			macs = append(macs, m)
		}
	}
	node, code, msg := s.find(r.Context(), q.Get("node_uuid"), macs)
	if code != 0 {
		writeFault(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"node":   lookupNode(node),
		"config": s.agentConfig(),
	})
}

// find resolves a node by uuid or MACs, restricted to nodes with a
// registered token.
func (s *Server) find(ctx context.Context, uuid string, macs []string) (Node, int, string) {
	var (
		node Node
		err  error
	)
	switch {
	case uuid != "":
		node, err = s.nodes.NodeByUUID(ctx, uuid)
	case len(macs) > 0:
		node, err = s.nodes.NodeByMACs(ctx, macs)
	default:
		return Node{}, http.StatusBadRequest, "Lookup requires addresses (valid MAC addresses) or node_uuid."
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Node{}, http.StatusNotFound, "Node could not be found."
		}
		s.log.Error("agent lookup failed", "err", err)
		return Node{}, http.StatusInternalServerError, "Node lookup failed."
	}
	if !s.expected(node.UUID) {
		// Ironic's restrict_lookup: only nodes waiting for an agent.
		return Node{}, http.StatusNotFound, "Node could not be found."
	}
	return node, 0, ""
}

// agentConfig is the lookup answer's config section.
func (s *Server) agentConfig() map[string]any {
	return map[string]any{
		"heartbeat_timeout": int(s.opts.HeartbeatTimeout.Seconds()),
		// The token is pre-generated and already on the ramdisk: Ironic
		// masks it, and IPA keeps the one from ipa-agent-token.
		"agent_token":               "******",
		"agent_token_required":      true,
		"agent_md5_checksum_enable": true,
		"metrics":                   map[string]any{"backend": "noop"},
		"metrics_statsd":            map[string]any{},
	}
}

// lookupNode returns the node fields Ironic's lookup returns, with secrets
// masked.
func lookupNode(n Node) map[string]any {
	return map[string]any{
		"uuid":                 n.UUID,
		"properties":           orEmpty(n.Properties),
		"instance_info":        maskSecrets(n.InstanceInfo),
		"driver_internal_info": maskSecrets(n.DriverInternalInfo),
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// maskSecrets copies m replacing values whose key names a secret (token,
// password, secret, key, configdrive) with "******".
func maskSecrets(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		switch {
		case strings.Contains(lk, "token"), strings.Contains(lk, "password"),
			strings.Contains(lk, "secret"), strings.HasSuffix(lk, "key"),
			lk == "configdrive":
			out[k] = "******"
		default:
			out[k] = v
		}
	}
	return out
}

// heartbeatBody is the body of POST /v1/heartbeat/<node>.
type heartbeatBody struct {
	CallbackURL        string `json:"callback_url"`
	AgentURL           string `json:"agent_url"` // legacy vendor passthru
	AgentToken         string `json:"agent_token"`
	AgentVersion       string `json:"agent_version"`
	AgentVerifyCA      string `json:"agent_verify_ca"`
	AgentStatus        string `json:"agent_status"`
	AgentStatusMessage string `json:"agent_status_message"`
	// DeployProgress is lightsout's extension (its own agent sends it
	// while writing an image; IPA does not).
	DeployProgress json.RawMessage `json:"deploy_progress"`
}

// progress decodes the deploy_progress extension; a malformed one is
// ignored (never a reason to refuse a heartbeat).
func (b heartbeatBody) progress() *DeployProgress {
	if len(b.DeployProgress) == 0 {
		return nil
	}
	var p DeployProgress
	if json.Unmarshal(b.DeployProgress, &p) != nil {
		return nil
	}
	return p.valid()
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	var body heartbeatBody
	if err := readJSON(r, &body); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid heartbeat body: "+err.Error())
		return
	}
	if body.CallbackURL == "" {
		body.CallbackURL = body.AgentURL
	}
	s.acceptHeartbeat(w, r, r.PathValue("node"), body, `Missing argument: "callback_url"`)
}

func (s *Server) acceptHeartbeat(w http.ResponseWriter, r *http.Request, nodeUUID string, body heartbeatBody, missing string) {
	if body.CallbackURL == "" {
		writeFault(w, http.StatusBadRequest, missing)
		return
	}
	if err := checkAgentURL(body.CallbackURL); err != nil {
		writeFault(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.AgentVerifyCA != "" {
		if err := checkCA(body.AgentVerifyCA); err != nil {
			writeFault(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if !s.expected(nodeUUID) {
		// Accept a node name by resolving it to the UUID.
		if n, err := s.nodes.NodeByUUID(r.Context(), nodeUUID); err == nil {
			nodeUUID = n.UUID
		}
	}
	code, msg := s.recordHeartbeat(r.Context(), nodeUUID, body.AgentToken, Heartbeat{
		AgentURL: strings.TrimRight(body.CallbackURL, "/"), AgentVersion: body.AgentVersion, AgentStatus: body.AgentStatus,
		AgentVerifyCA: body.AgentVerifyCA, Progress: body.progress(),
	})
	if code != 0 {
		s.log.Warn("agent heartbeat refused", "node", nodeUUID, "status", code, "reason", msg)
		writeFault(w, code, msg)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// checkAgentURL validates an agent callback URL.
func checkAgentURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid callback_url %q: must be an http(s) URL such as http://10.0.0.5:9999", raw)
	}
	return nil
}

// checkCA validates agent_verify_ca: PEM holding at least one certificate.
func checkCA(pemData string) error {
	rest := []byte(pemData)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("invalid agent_verify_ca: %v", err)
		}
		n++
	}
	if n == 0 {
		return errors.New("invalid agent_verify_ca: no PEM certificate")
	}
	return nil
}

// legacyLookupBody is the payload version 2 of the vendor passthru lookup.
type legacyLookupBody struct {
	Version   json.RawMessage `json:"version"`
	NodeUUID  string          `json:"node_uuid"`
	Inventory struct {
		Interfaces []struct {
			Name       string `json:"name"`
			MACAddress string `json:"mac_address"`
		} `json:"interfaces"`
	} `json:"inventory"`
}

func passthruMethod(r *http.Request) string {
	if m := r.PathValue("method"); m != "" {
		return m
	}
	return r.URL.Query().Get("method")
}

// driverPassthru serves the legacy POST /v1/drivers/<d>/vendor_passthru/lookup.
func (s *Server) driverPassthru(w http.ResponseWriter, r *http.Request) {
	if m := passthruMethod(r); m != "lookup" {
		writeFault(w, http.StatusBadRequest, fmt.Sprintf("Unsupported method (%s) passed through to vendor extension; only lookup is served.", m))
		return
	}
	var body legacyLookupBody
	if err := readJSON(r, &body); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid lookup body: "+err.Error())
		return
	}
	if len(body.Version) == 0 || string(body.Version) == "null" {
		writeFault(w, http.StatusBadRequest, "Missing parameter version")
		return
	}
	var ver string
	if err := json.Unmarshal(body.Version, &ver); err != nil {
		ver = string(body.Version)
	}
	if ver != "2" {
		writeFault(w, http.StatusBadRequest, "Unknown lookup payload version: "+ver)
		return
	}
	var macs []string
	for _, i := range body.Inventory.Interfaces {
		if m := NormalizeMAC(i.MACAddress); m != "" {
			macs = append(macs, m)
		}
	}
	node, code, msg := s.find(r.Context(), body.NodeUUID, macs)
	if code != 0 {
		writeFault(w, code, msg)
		return
	}
	n := lookupNode(node)
	n["name"] = node.Name
	n["driver"] = node.Driver
	writeJSON(w, http.StatusOK, map[string]any{
		"heartbeat_timeout": int(s.opts.HeartbeatTimeout.Seconds()),
		"node":              n,
	})
}

// nodePassthru serves the legacy POST /v1/nodes/<n>/vendor_passthru/heartbeat.
func (s *Server) nodePassthru(w http.ResponseWriter, r *http.Request) {
	if m := passthruMethod(r); m != "heartbeat" {
		writeFault(w, http.StatusBadRequest, fmt.Sprintf("Unsupported method (%s) passed through to vendor extension; only heartbeat is served.", m))
		return
	}
	var body heartbeatBody
	if err := readJSON(r, &body); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid heartbeat body: "+err.Error())
		return
	}
	if body.CallbackURL == "" {
		body.CallbackURL = body.AgentURL
	}
	s.acceptHeartbeat(w, r, r.PathValue("node"), body, `For heartbeat operation, "agent_url" must be specified.`)
}

func readJSON(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(data) > maxBody {
		return errors.New("body too large")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return errors.New("empty body, expected a JSON object")
	}
	return json.Unmarshal(data, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeFault writes an Ironic-style error: {"error_message": "<json of
// {faultcode, faultstring, debuginfo}>"}, plus faultstring at the top level
// (which IPA reads on heartbeat conflicts).
func writeFault(w http.ResponseWriter, code int, msg string) {
	faultcode := "Client"
	if code >= 500 {
		faultcode = "Server"
	}
	inner, _ := json.Marshal(map[string]any{"faultcode": faultcode, "faultstring": msg, "debuginfo": nil})
	writeJSON(w, code, map[string]any{"error_message": string(inner), "faultstring": msg, "faultcode": faultcode})
}
