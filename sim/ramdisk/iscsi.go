package ramdisk

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/lightsout/lightsout/runtime/deployagent/tgt"
)

// startISCSITarget is IPA's iscsi.start_iscsi_target(iqn=None,
// wipe_disk_metadata=False, portal_port=None) (ironic-python-agent 7.1.0),
// plus chap_user/chap_secret (lightsout's extension, refused with
// Failures.UnmodifiedIPA): a real tgtd on 127.0.0.1 exports the server's
// disk file as LUN 1 of iqn (without one, as IPA, a new
// iqn.2008-10.org.openstack:<uuid>); the result is IPA's
// {"iscsi_target_iqn": iqn}. A previous target of this agent is stopped
// first; the target is
// stopped when the agent stops (power off) or another command starts.
func (a *Agent) startISCSITarget(ctx context.Context, params map[string]any) (any, *restError) {
	iqn, _ := params["iqn"].(string)
	if iqn == "" {
		iqn = "iqn.2008-10.org.openstack:" + newID()
	}
	port := 3260
	if p, ok := params["portal_port"].(float64); ok && p > 0 {
		port = int(p)
	}
	user, _ := params["chap_user"].(string)
	secret, _ := params["chap_secret"].(string)
	if a.cfg.Failures.WrongCHAPSecret && user != "" {
		secret = "not-" + secret
	}
	a.stopISCSITarget()
	if wipe, _ := params["wipe_disk_metadata"].(bool); wipe {
		if err := eraseMetadata(a.cfg.DiskPath); err != nil {
			return nil, execError("iscsi: wiping disk metadata of %s: %v", a.cfg.DiskPath, err)
		}
	}
	tgtPort, f := port, a.cfg.Failures
	var rl *relay
	if f.TargetVanishesAfter > 0 || f.TargetStallsAfter > 0 { // tgtd behind a relay on the portal that cuts or holds the write
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, &restError{Type: "ISCSIError", Code: 500, Message: "Error starting iSCSI target", Details: err.Error()}
		}
		if tgtPort, err = freePort(); err != nil {
			l.Close()
			return nil, &restError{Type: "ISCSIError", Code: 500, Message: "Error starting iSCSI target", Details: err.Error()}
		}
		rl = &relay{ln: l, to: net.JoinHostPort("127.0.0.1", strconv.Itoa(tgtPort)), closed: make(chan struct{})}
		if f.TargetVanishesAfter > 0 {
			rl.after = f.TargetVanishesAfter
			rl.vanish = func() { a.log.Info("iSCSI target vanishes (injected failure)"); a.stopISCSITarget() }
		} else {
			rl.after = f.TargetStallsAfter
		}
	}
	t, err := tgt.Start(ctx, tgt.Config{Addr: "127.0.0.1", Port: tgtPort, IQN: iqn, Device: a.cfg.DiskPath, CHAPUser: user, CHAPSecret: secret})
	if err != nil {
		if rl != nil {
			rl.close()
		}
		return nil, &restError{Type: "ISCSIError", Code: 500, Message: "Error starting iSCSI target", Details: err.Error()}
	}
	a.mu.Lock()
	a.target, a.relay = t, rl
	a.mu.Unlock()
	if rl != nil {
		go rl.serve()
	}
	a.log.Info("iSCSI target started", "iqn", iqn, "port", port, "chap", user != "")
	return map[string]any{"iscsi_target_iqn": iqn}, nil
}

// stopISCSITarget stops the agent's iSCSI target, if any.
func (a *Agent) stopISCSITarget() {
	a.mu.Lock()
	t, rl := a.target, a.relay
	a.target, a.relay = nil, nil
	a.mu.Unlock()
	if rl != nil {
		rl.close()
	}
	if t != nil {
		_ = t.Stop(context.Background())
		a.log.Info("iSCSI target stopped", "iqn", t.Config().IQN)
	}
}

// ISCSITargetStalled reports whether the agent's target holds a write
// (Failures.TargetStallsAfter reached).
func (a *Agent) ISCSITargetStalled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.relay != nil && a.relay.stalled.Load()
}

// ISCSITargetRunning reports whether the agent exports its disk now.
func (a *Agent) ISCSITargetRunning() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.target != nil
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// relay forwards the portal's connections to tgtd; once the initiators
// have sent more than after bytes it calls vanish (which cuts them, stops
// accepting and stops tgtd: Failures.TargetVanishesAfter) or, with vanish
// nil, stops forwarding until it is closed (Failures.TargetStallsAfter).
type relay struct {
	ln     net.Listener
	to     string
	after  int64
	vanish func()
	closed chan struct{}

	sent      atomic.Int64
	stalled   atomic.Bool
	once      sync.Once
	closeOnce sync.Once
	mu        sync.Mutex
	conns     []net.Conn
}

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
		go r.forward(c, up)
	}
}

// forward copies the initiator's bytes to tgtd, counting them.
func (r *relay) forward(c, up net.Conn) {
	defer up.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if r.sent.Add(int64(n)) > r.after {
				if r.vanish != nil {
					r.once.Do(func() { go r.vanish() })
					return
				}
				r.stalled.Store(true)
				<-r.closed // hold the write until the target stops
				return
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close stops accepting and cuts every connection.
func (r *relay) close() {
	r.closeOnce.Do(func() { close(r.closed) })
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}
