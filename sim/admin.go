package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// AdminFaults is the JSON form of [Faults] on the admin endpoint (latency as
// a Go duration string such as "250ms").
type AdminFaults struct {
	Latency      string   `json:"latency,omitempty"`
	ErrorRate    float64  `json:"error_rate"`
	ErrorKinds   []string `json:"error_kinds,omitempty"`
	Hang         bool     `json:"hang"`
	Busy         int      `json:"busy"`
	SessionLimit int      `json:"session_limit"`
	Profile      bool     `json:"profile,omitempty"` // the generation's latency profile
}

func toAdmin(f Faults) AdminFaults {
	a := AdminFaults{ErrorRate: f.ErrorRate, ErrorKinds: f.ErrorKinds, Hang: f.Hang, Busy: f.Busy, SessionLimit: f.SessionLimit, Profile: f.Profile}
	if f.Latency > 0 {
		a.Latency = f.Latency.String()
	}
	return a
}

func (a AdminFaults) faults() (Faults, error) {
	f := Faults{ErrorRate: a.ErrorRate, ErrorKinds: a.ErrorKinds, Hang: a.Hang, Busy: a.Busy, SessionLimit: a.SessionLimit, Profile: a.Profile}
	if a.Latency != "" {
		d, err := time.ParseDuration(a.Latency)
		if err != nil {
			return f, fmt.Errorf("latency %q: use a duration such as 250ms: %w", a.Latency, err)
		}
		f.Latency = d
	}
	return f, f.validate()
}

// AdminServer is one server as the admin endpoint shows it (no passwords).
type AdminServer struct {
	Name       string      `json:"name"`
	Generation Generation  `json:"generation"`
	Address    string      `json:"address"`
	State      State       `json:"state"`
	Faults     AdminFaults `json:"faults"`
	Requests   int64       `json:"requests"`
	Sessions   int         `json:"sessions"`
}

func (s *Server) adminView() AdminServer {
	st := s.State()
	for i := range st.Users {
		st.Users[i].Password = "******"
	}
	return AdminServer{Name: s.name, Generation: s.gen, Address: s.Addr(), State: st, Faults: toAdmin(s.Faults()),
		Requests: s.Requests(), Sessions: s.Sessions()}
}

// StartAdmin serves the admin endpoint on addr (e.g. "127.0.0.1:0") over
// plain HTTP and returns its base URL:
//
//	GET  /servers                 every server (state without passwords, faults)
//	GET  /servers/{name}          one server
//	GET  /servers/{name}/faults   its faults
//	PUT  /servers/{name}/faults   replace its faults (JSON AdminFaults)
//	POST /servers/{name}/power    {"action": "on" | "off" | "reset"}
//	GET  /servers/{name}/sessions its Redfish sessions (ids and users, no tokens)
//	DELETE /servers/{name}/sessions[/{id}]  end every session (or one), as
//	                              an iLO does on timeout or reset: the
//	                              client's next call gets 401 and must log in
//	                              again
func (s *Sim) StartAdmin(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("sim: admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("sim: admin address %q: must be a loopback address (it has no authentication)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sim: admin listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /servers", func(w http.ResponseWriter, r *http.Request) {
		out := make([]AdminServer, 0, len(s.servers))
		for _, srv := range s.servers {
			out = append(out, srv.adminView())
		}
		writeJSON(w, 200, out, "")
	})
	lookup := func(w http.ResponseWriter, r *http.Request) *Server {
		srv, ok := s.byName[r.PathValue("name")]
		if !ok {
			http.Error(w, fmt.Sprintf("no server %q; see GET /servers", r.PathValue("name")), http.StatusNotFound)
		}
		return srv
	}
	mux.HandleFunc("GET /servers/{name}", func(w http.ResponseWriter, r *http.Request) {
		if srv := lookup(w, r); srv != nil {
			writeJSON(w, 200, srv.adminView(), "")
		}
	})
	mux.HandleFunc("GET /servers/{name}/faults", func(w http.ResponseWriter, r *http.Request) {
		if srv := lookup(w, r); srv != nil {
			writeJSON(w, 200, toAdmin(srv.Faults()), "")
		}
	})
	mux.HandleFunc("PUT /servers/{name}/faults", func(w http.ResponseWriter, r *http.Request) {
		srv := lookup(w, r)
		if srv == nil {
			return
		}
		var a AdminFaults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			http.Error(w, "bad faults JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		f, err := a.faults()
		if err == nil {
			err = srv.SetFaults(f)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, 200, toAdmin(srv.Faults()), "")
	})
	mux.HandleFunc("POST /servers/{name}/power", func(w http.ResponseWriter, r *http.Request) {
		srv := lookup(w, r)
		if srv == nil {
			return
		}
		var req struct {
			Action string `json:"action"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&req); err != nil {
			http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		switch strings.ToLower(req.Action) {
		case "on":
			srv.PowerOn()
		case "off":
			srv.PowerOff()
		case "reset":
			srv.Reset()
		default:
			http.Error(w, `action must be "on", "off" or "reset"`, http.StatusBadRequest)
			return
		}
		writeJSON(w, 200, srv.adminView(), "")
	})
	mux.HandleFunc("GET /servers/{name}/sessions", func(w http.ResponseWriter, r *http.Request) {
		if srv := lookup(w, r); srv != nil {
			writeJSON(w, 200, srv.SessionList(), "")
		}
	})
	endSessions := func(w http.ResponseWriter, r *http.Request) {
		srv := lookup(w, r)
		if srv == nil {
			return
		}
		n := srv.EndSessions(r.PathValue("id"))
		if r.PathValue("id") != "" && n == 0 {
			http.Error(w, fmt.Sprintf("no session %q on %s; see GET /servers/%s/sessions", r.PathValue("id"), srv.Name(), srv.Name()), http.StatusNotFound)
			return
		}
		writeJSON(w, 200, map[string]int{"ended": n}, "")
	}
	mux.HandleFunc("DELETE /servers/{name}/sessions", endSessions)
	mux.HandleFunc("DELETE /servers/{name}/sessions/{id}", endSessions)
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.adminLn = ln
	s.adminURL = "http://" + ln.Addr().String()
	go func() {
		if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sim: admin endpoint", "err", err)
		}
	}()
	return s.adminURL, nil
}

// AdminURL is the admin endpoint's base URL ("" when not started).
func (s *Sim) AdminURL() string { return s.adminURL }

// ParseFaultSpec parses a per-server fault flag:
// "NAME:latency=2s,error-rate=0.5,error-kinds=503+reset,hang,busy=3,session-limit=2,profile".
func ParseFaultSpec(spec string) (string, Faults, error) {
	name, rest, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return "", Faults{}, fmt.Errorf("--fault %q: want NAME:key=value,... e.g. gen10-0:latency=2s,error-rate=0.5", spec)
	}
	var f Faults
	for _, kv := range strings.Split(rest, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "latency":
			f.Latency, err = time.ParseDuration(v)
		case "error-rate":
			f.ErrorRate, err = strconv.ParseFloat(v, 64)
		case "error-kinds":
			f.ErrorKinds, err = ParseErrorKinds(strings.ReplaceAll(v, "+", ","))
		case "hang":
			f.Hang = v == "" || v == "true"
		case "busy":
			f.Busy, err = strconv.Atoi(v)
		case "session-limit":
			f.SessionLimit, err = strconv.Atoi(v)
		case "profile":
			f.Profile = v == "" || v == "true"
		default:
			return "", Faults{}, fmt.Errorf("--fault %q: unknown key %q (latency, error-rate, error-kinds, hang, busy, session-limit, profile)", spec, k)
		}
		if err != nil {
			return "", Faults{}, fmt.Errorf("--fault %q: %s: %w", spec, k, err)
		}
	}
	if err := f.validate(); err != nil {
		return "", Faults{}, fmt.Errorf("--fault %q: %w", spec, err)
	}
	return name, f, nil
}

// CLIConfig is what `lightsout sim` passes to [RunCLI].
type CLIConfig struct {
	Options   Options
	Inventory string            // path of the inventory to write
	AdminAddr string            // "" disables the admin endpoint
	PerServer map[string]Faults // faults by server name
	// OnStart, if set, is called with the running simulator before the
	// inventory is written (e.g. to attach an emulated ramdisk).
	OnStart func(s *Sim)
}

// RunCLI runs a simulator until ctx is cancelled: it prints the certificate
// fingerprints, writes the inventory once every listener is up, prints
// "ready" and waits.
func RunCLI(ctx context.Context, cfg CLIConfig, out io.Writer) error {
	s, err := New(cfg.Options)
	if err != nil {
		return err
	}
	defer s.Close()
	if cfg.OnStart != nil {
		cfg.OnStart(s)
	}
	for name, f := range cfg.PerServer {
		srv, ok := s.ServerByName(name)
		if !ok {
			return fmt.Errorf("--fault: no server %q (servers: %s)", name, strings.Join(s.names(), ", "))
		}
		if err := srv.SetFaults(f); err != nil {
			return err
		}
	}
	if cfg.AdminAddr != "" {
		u, err := s.StartAdmin(cfg.AdminAddr)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "admin endpoint: %s\n", u)
	}
	fmt.Fprintf(out, "CA certificate: %s\n", s.CAFile())
	fmt.Fprintf(out, "CA fingerprint (SHA-256): %s\n", s.CAFingerprint())
	fmt.Fprintf(out, "server certificate fingerprint (SHA-256): %s\n", s.CertFingerprint())
	for _, srv := range s.servers {
		fmt.Fprintf(out, "%s %s %s\n", srv.Name(), srv.Hardware().Model, srv.URL())
	}
	if cfg.Inventory != "" {
		if err := s.WriteInventory(cfg.Inventory); err != nil {
			return err
		}
		fmt.Fprintf(out, "inventory: %s (%d nodes)\n", cfg.Inventory, len(s.servers))
	}
	fmt.Fprintln(out, "ready")
	<-ctx.Done()
	return s.Close()
}
