package deployagent

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
)

// handler serves IPA's agent API:
//
//	GET  /, /v1                 version document
//	GET  /v1/status             {"version": …}
//	GET  /v1/commands[/]        {"commands": [...]} in execution order
//	GET  /v1/commands/<id>      one command (?wait=true blocks until done)
//	POST /v1/commands[/]        run {"name": "ext.cmd", "params": {…}} (?wait=true)
//
// Every request may carry ?agent_token=; POSTs must (401 otherwise), GETs
// must once any GET presented one (IPA's rule).
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.apiRoot)
	mux.HandleFunc("GET /v1", a.apiRoot)
	mux.HandleFunc("GET /v1/{$}", a.apiRoot)
	mux.HandleFunc("GET /v1/status", a.apiStatus)
	mux.HandleFunc("GET /v1/commands", a.apiList)
	mux.HandleFunc("GET /v1/commands/{$}", a.apiList)
	mux.HandleFunc("GET /v1/commands/{id}", a.apiGet)
	mux.HandleFunc("POST /v1/commands", a.apiRun)
	mux.HandleFunc("POST /v1/commands/{$}", a.apiRun)
	return mux
}

func (a *Agent) apiRoot(w http.ResponseWriter, r *http.Request) {
	v := map[string]any{"id": "v1", "links": []any{map[string]any{"href": "http://" + r.Host + "/v1/", "rel": "self"}}}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":            "OpenStack Ironic Python Agent API (lightsout deploy agent)",
		"versions":        []any{v},
		"default_version": v,
	})
}

func (a *Agent) apiStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": Version})
}

// tokenOK applies IPA's checks: POST always validates the token once one
// is known or required; GETs validate it once any GET presented one.
func (a *Agent) tokenOK(r *http.Request, post bool) bool {
	tok := r.URL.Query().Get("agent_token")
	a.mu.Lock()
	defer a.mu.Unlock()
	if !post {
		if tok != "" {
			a.getToken = true
		}
		if !a.getToken {
			return true
		}
	}
	if a.token == "" && !a.tokenRequired {
		return true
	}
	return a.token != "" && subtle.ConstantTimeCompare([]byte(a.token), []byte(tok)) == 1
}

func (a *Agent) apiList(w http.ResponseWriter, r *http.Request) {
	if !a.tokenOK(r, false) {
		writeFault(w, http.StatusUnauthorized, "Token invalid.")
		return
	}
	a.mu.Lock()
	cmds := append([]*command(nil), a.cmds...)
	a.mu.Unlock()
	list := make([]any, 0, len(cmds))
	for _, c := range cmds {
		list = append(list, c.serialize())
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": list})
}

func (a *Agent) apiGet(w http.ResponseWriter, r *http.Request) {
	if !a.tokenOK(r, false) {
		writeFault(w, http.StatusUnauthorized, "Token invalid.")
		return
	}
	id := r.PathValue("id")
	var found *command
	a.mu.Lock()
	for _, c := range a.cmds {
		if c.id == id {
			found = c
		}
	}
	a.mu.Unlock()
	if found == nil {
		writeFault(w, http.StatusNotFound, fmt.Sprintf("Command result with id %s not found.", id))
		return
	}
	if strings.EqualFold(r.URL.Query().Get("wait"), "true") {
		select {
		case <-found.done:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, found.serialize())
}

func (a *Agent) apiRun(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string         `json:"name"`
		Params map[string]any `json:"params"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil || json.Unmarshal(data, &body) != nil || body.Name == "" || body.Params == nil {
		writeFault(w, http.StatusBadRequest, "Missing or invalid name or params")
		return
	}
	if !a.tokenOK(r, true) {
		writeFault(w, http.StatusUnauthorized, "Token invalid.")
		return
	}
	c, code, msg := a.execute(body.Name, body.Params)
	if code != 0 {
		writeFault(w, code, msg)
		return
	}
	defer c.markAnswered()
	if strings.EqualFold(r.URL.Query().Get("wait"), "true") {
		select {
		case <-c.done:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, c.serialize())
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // on the wire before power_off goes on
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeFault writes IPA's error shape {faultcode, faultstring}.
func writeFault(w http.ResponseWriter, code int, msg string) {
	fc := "Client"
	if code >= 500 {
		fc = "Server"
	}
	writeJSON(w, code, map[string]any{"faultcode": fc, "faultstring": msg})
}

// newID returns a random UUID-shaped command id. math/rand: ids need to be
// unique, not secret, and crypto/rand may block early in a VM's boot
// until the kernel's crng is seeded.
func newID() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
