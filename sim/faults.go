package sim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Faults are the failures injected into one server's answers.
type Faults struct {
	// Latency is added before every answer.
	Latency time.Duration `json:"latency"`
	// ErrorRate is the probability (0..1) that a request fails with one of
	// ErrorKinds instead of being answered.
	ErrorRate float64 `json:"error_rate"`
	// ErrorKinds are "500", "503" and "reset" (TCP reset). Default: all three.
	ErrorKinds []string `json:"error_kinds,omitempty"`
	// Hang makes every request wait until the fault is cleared, the client
	// gives up or the simulator closes.
	Hang bool `json:"hang"`
	// Busy answers the next Busy state-changing requests with the iLO's
	// "not now" error (Redfish/REST: HTTP 400 InvalidOperationForSystemState
	// or UnableToModifyDuringSystemPOST; RIBCL: HTTP 503).
	Busy int `json:"busy"`
	// SessionLimit caps concurrent Redfish sessions (0: no limit). Further
	// logins, and basic-auth requests while every slot is taken, get HTTP
	// 503 with Base.1.4.SessionLimitExceeded.
	SessionLimit int `json:"session_limit"`
	// Profile charges the generation's [LatencyProfile] (TLS handshake,
	// login, GET, write, RIBCL document costs) on top of Latency. Off by
	// default.
	Profile bool `json:"profile,omitempty"`
}

func (f *Faults) validate() error {
	if f.Latency < 0 {
		return fmt.Errorf("faults.latency %s: must not be negative", f.Latency)
	}
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("faults.error_rate %g: must be between 0 and 1", f.ErrorRate)
	}
	for _, k := range f.ErrorKinds {
		switch k {
		case "500", "503", "reset":
		default:
			return fmt.Errorf("faults.error_kinds %q: use 500, 503 or reset", k)
		}
	}
	if f.Busy < 0 {
		return fmt.Errorf("faults.busy %d: must not be negative", f.Busy)
	}
	if f.SessionLimit < 0 {
		return fmt.Errorf("faults.session_limit %d: must not be negative", f.SessionLimit)
	}
	return nil
}

// ParseErrorKinds parses "500,503,reset".
func ParseErrorKinds(s string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	f := Faults{ErrorKinds: out}
	return out, f.validate()
}

// Faults returns the server's current faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.ErrorKinds = append([]string(nil), f.ErrorKinds...)
	return f
}

// SetFaults replaces the server's faults. Clearing Hang releases requests
// that are hanging.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("sim: %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.faults = f
	if !f.Hang && s.hangCh != nil {
		close(s.hangCh)
		s.hangCh = nil
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) stopHang() {
	s.mu.Lock()
	if s.hangCh != nil {
		close(s.hangCh)
		s.hangCh = nil
	}
	s.mu.Unlock()
}

// preflight applies faults; false means the request has been dealt with.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.faults
	f.Latency += requestCost(s.profileLocked(), r)
	resetting := !s.resetUntil.IsZero() && time.Now().Before(s.resetUntil)
	var hang chan struct{}
	if f.Hang {
		if s.hangCh == nil {
			s.hangCh = make(chan struct{})
		}
		hang = s.hangCh
	}
	kind := ""
	if f.ErrorRate > 0 && s.rng.Float64() < f.ErrorRate {
		kinds := f.ErrorKinds
		if len(kinds) == 0 {
			kinds = []string{"500", "503", "reset"}
		}
		kind = kinds[s.rng.IntN(len(kinds))]
	}
	s.mu.Unlock()

	if resetting {
		resetConnection(w)
		return false
	}
	ctx := r.Context()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		case <-s.sim.baseCtx.Done():
			t.Stop()
			resetConnection(w)
			return false
		}
	}
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return false
		case <-s.sim.baseCtx.Done():
			resetConnection(w)
			return false
		}
	}
	switch kind {
	case "500":
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return false
	case "503":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return false
	case "reset":
		resetConnection(w)
		return false
	}
	return true
}

// takeBusy consumes one busy answer; true means the caller must answer busy.
func (s *Server) takeBusy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Busy > 0 {
		s.faults.Busy--
		return true
	}
	return false
}
