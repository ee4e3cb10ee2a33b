package sim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// LatencyProfile is what one iLO generation costs per operation, for
// benchmarks that must count round trips the way real iLOs make them count.
// It is off unless [Faults.Profile] is set; [Faults.Latency] adds on top.
//
// The figures of [DefaultLatencyProfile] are order-of-magnitude values, not
// measurements of ours: they come from what operators and client projects
// report about real iLOs (python-hpilo and proliantutils users quoting
// about a second per RIBCL call on iLO 4, sushy/ironic reports of iLO 5
// session logins near a second and GETs of a few hundred milliseconds, HPE's
// own advice to reuse sessions because a login is costly and logged). What
// they encode is the ratio that matters for a client's design:
//
//   - a TLS handshake is expensive on the iLO's small ARM core (RSA 2048
//     signature): 300 ms on iLO 4, falling to 100 ms on iLO 7;
//   - a Redfish login (POST SessionService/Sessions) costs several GETs:
//     it writes the iLO event log and allocates one of a few session slots;
//     a request with basic credentials pays it too (the iLO opens and
//     closes a session behind it);
//   - a GET costs one round trip of the iLO's web server: 250 ms on iLO 4
//     (Gen9 Redfish is slow), 150/120/100 ms on iLO 5/6/7;
//   - a PATCH/POST/DELETE costs about twice a GET (BIOS and boot settings
//     go through the iLO's persistent store);
//   - a RIBCL document costs a login plus its commands: about 1 s on iLO 4,
//     600 ms on iLO 5/6 (where RIBCL is a compatibility layer).
type LatencyProfile struct {
	Handshake time.Duration `json:"handshake"` // per TLS handshake (new connection)
	Login     time.Duration `json:"login"`     // Redfish/REST login, and each basic-auth request
	Get       time.Duration `json:"get"`       // Redfish/REST GET or HEAD
	Write     time.Duration `json:"write"`     // Redfish/REST PATCH, POST, PUT, DELETE
	RIBCL     time.Duration `json:"ribcl"`     // one RIBCL document (login included)
}

// DefaultLatencyProfile is the built-in profile of generation g (see
// [LatencyProfile] for where the figures come from).
func DefaultLatencyProfile(g Generation) LatencyProfile {
	switch g {
	case Gen8, Gen9:
		return LatencyProfile{Handshake: 300 * time.Millisecond, Login: 1000 * time.Millisecond,
			Get: 250 * time.Millisecond, Write: 500 * time.Millisecond, RIBCL: 1000 * time.Millisecond}
	case Gen10:
		return LatencyProfile{Handshake: 150 * time.Millisecond, Login: 800 * time.Millisecond,
			Get: 150 * time.Millisecond, Write: 300 * time.Millisecond, RIBCL: 600 * time.Millisecond}
	case Gen11:
		return LatencyProfile{Handshake: 120 * time.Millisecond, Login: 600 * time.Millisecond,
			Get: 120 * time.Millisecond, Write: 250 * time.Millisecond, RIBCL: 600 * time.Millisecond}
	default:
		return LatencyProfile{Handshake: 100 * time.Millisecond, Login: 500 * time.Millisecond,
			Get: 100 * time.Millisecond, Write: 200 * time.Millisecond, RIBCL: 600 * time.Millisecond}
	}
}

// Scaled returns p with every cost multiplied by f (e.g. 0.01 to keep the
// ratios of a profile in a quick test).
func (p LatencyProfile) Scaled(f float64) LatencyProfile {
	sc := func(d time.Duration) time.Duration { return time.Duration(float64(d) * f) }
	return LatencyProfile{Handshake: sc(p.Handshake), Login: sc(p.Login), Get: sc(p.Get), Write: sc(p.Write), RIBCL: sc(p.RIBCL)}
}

func (p LatencyProfile) validate() error {
	for _, d := range []time.Duration{p.Handshake, p.Login, p.Get, p.Write, p.RIBCL} {
		if d < 0 {
			return fmt.Errorf("latency profile %+v: costs must not be negative", p)
		}
	}
	return nil
}

// profile is the server's active latency profile (zero when off).
func (s *Server) profileLocked() LatencyProfile {
	if !s.faults.Profile {
		return LatencyProfile{}
	}
	if p, ok := s.sim.opts.LatencyProfiles[s.gen]; ok {
		return p
	}
	return DefaultLatencyProfile(s.gen)
}

// requestCost is what the profile charges for r.
func requestCost(p LatencyProfile, r *http.Request) time.Duration {
	path := strings.ToLower(r.URL.Path)
	switch {
	case path == "/ribcl":
		return p.RIBCL
	case r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(path, "/"), "/sessions"):
		return p.Login
	}
	var d time.Duration
	if _, _, ok := basicAuth(r); ok {
		d = p.Login
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return d + p.Get
	}
	return d + p.Write
}

// handshakeDelay charges the profile's TLS handshake cost (called from the
// handshake of each new connection).
func (s *Server) handshakeDelay() {
	s.mu.Lock()
	d := s.profileLocked().Handshake
	s.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.sim.baseCtx.Done():
	}
}
