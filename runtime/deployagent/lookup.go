package deployagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// loop looks the node up (retrying), then heartbeats until the agent stops.
func (a *Agent) loop() {
	delay := a.cfg.LookupRetry
	for {
		err := a.lookup(a.ctx)
		if err == nil {
			break
		}
		if a.ctx.Err() != nil {
			return
		}
		a.setErr(err)
		a.log.Warn("lookup failed, retrying", "err", a.redact(err.Error()), "in", delay)
		if !sleepCtx(a.ctx, delay) {
			return
		}
		delay = min(delay*2, 10*time.Second)
	}
	a.mu.Lock()
	adv := a.advertised
	a.mu.Unlock()
	a.Console("%s url=%s uptime=%s", ConsoleUp, adv, Uptime(a.cfg.Root))
	close(a.up)
	a.heartbeatLoop()
}

// apiRoot reads GET / for the maximum API version (IPA falls back to 1.31).
func (a *Agent) apiRootVersion(ctx context.Context, api string) string {
	var root struct {
		DefaultVersion struct {
			Version string `json:"version"`
		} `json:"default_version"`
	}
	if err := a.call(ctx, http.MethodGet, api+"/", "", nil, &root, http.StatusOK); err != nil || root.DefaultVersion.Version == "" {
		return "1.31"
	}
	return root.DefaultVersion.Version
}

// versionAtLeast compares "1.62"-style versions.
func versionAtLeast(v, want string) bool {
	p := func(s string) (int, int) {
		a, b, _ := strings.Cut(s, ".")
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x, y
	}
	a1, a2 := p(v)
	b1, b2 := p(want)
	return a1 > b1 || (a1 == b1 && a2 >= b2)
}

// lookupMACs returns the lookup addresses: configured, else every NIC's
// MAC with BOOTIF first.
func (a *Agent) lookupMACs() []string {
	if len(a.cfg.MACs) > 0 {
		return a.cfg.MACs
	}
	var macs []string
	if b := a.cfg.Params.BootIF; b != "" {
		macs = append(macs, b)
	}
	for _, n := range ListNICs(rootOr(a.cfg.Root)) {
		if n.MACAddress != "" && n.MACAddress != a.cfg.Params.BootIF {
			macs = append(macs, n.MACAddress)
		}
	}
	return macs
}

func rootOr(r string) string {
	if r == "" {
		return "/"
	}
	return r
}

// lookup does IPA's GET /v1/lookup?addresses=…&node_uuid=… against each API URL.
func (a *Agent) lookup(ctx context.Context) error {
	var errs []error
	macs := a.lookupMACs()
	for _, api := range a.cfg.Params.APIURLs {
		ver := a.apiRootVersion(ctx, api)
		hdr := "1.22" // lookup's minimum
		if versionAtLeast(ver, "1.62") {
			hdr = "1.62"
		}
		q := url.Values{"addresses": {strings.Join(macs, ",")}}
		if u := a.cfg.Params.Raw["ipa-node-uuid"]; u != "" {
			q.Set("node_uuid", u)
		}
		var res struct {
			Node   map[string]any `json:"node"`
			Config map[string]any `json:"config"`
		}
		if err := a.call(ctx, http.MethodGet, api+"/v1/lookup?"+q.Encode(), hdr, nil, &res, http.StatusOK); err != nil {
			errs = append(errs, err)
			continue
		}
		uuid, _ := res.Node["uuid"].(string)
		if uuid == "" || res.Config == nil {
			errs = append(errs, fmt.Errorf("lookup at %s: answer without node.uuid or config", api))
			continue
		}
		adv, err := a.advertiseURL(ctx, api)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.mu.Lock()
		a.apiURL, a.apiVersion, a.nodeUUID, a.node, a.advertised = api, ver, uuid, res.Node, adv
		if tok, _ := res.Config["agent_token"].(string); len(tok) >= 32 && !strings.Contains(tok, "*") {
			a.token = tok // Ironic-generated token (none pre-generated)
		}
		if req, _ := res.Config["agent_token_required"].(bool); req {
			a.tokenRequired = true
		}
		if t, ok := res.Config["heartbeat_timeout"].(float64); ok && t > 0 {
			a.hbTimeout = time.Duration(t * float64(time.Second))
		}
		a.mu.Unlock()
		a.log.Info("looked up", "node", uuid, "api", api, "callback_url", adv)
		return nil
	}
	return errors.Join(errs...)
}

// advertiseURL is the callback_url: ipa-advertise-host (or the local
// address the kernel routes toward the API) and ipa-advertise-port.
func (a *Agent) advertiseURL(ctx context.Context, api string) (string, error) {
	if a.cfg.AdvertiseURL != "" {
		return a.cfg.AdvertiseURL, nil
	}
	host := a.cfg.Params.AdvertiseHost
	if host == "" {
		u, err := url.Parse(api)
		if err != nil {
			return "", err
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", net.JoinHostPort(u.Hostname(), port))
		if err != nil {
			return "", fmt.Errorf("finding the local address toward %s: %w (set ipa-advertise-host)", u.Host, err)
		}
		host = c.LocalAddr().(*net.UDPAddr).IP.String()
		c.Close()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.cfg.Params.AdvertisePort)), nil
}

// heartbeatInterval is IPA's: 0.3–0.6 × heartbeat_timeout, unless set.
func (a *Agent) heartbeatInterval() time.Duration {
	if a.cfg.HeartbeatInterval > 0 {
		return a.cfg.HeartbeatInterval
	}
	a.mu.Lock()
	t := a.hbTimeout
	a.mu.Unlock()
	if t <= 0 {
		t = 300 * time.Second
	}
	return time.Duration(float64(t) * (0.3 + 0.3*rand.Float64()))
}

func (a *Agent) heartbeatLoop() {
	timer := time.NewTimer(0) // IPA heartbeats at once after lookup
	defer timer.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-timer.C:
		case <-a.force:
		}
		if err := a.heartbeat(a.ctx); err != nil {
			if a.ctx.Err() != nil {
				return
			}
			a.setErr(err)
			a.log.Warn("heartbeat failed", "err", a.redact(err.Error()))
			timer.Reset(min(5*time.Second, a.heartbeatInterval()))
			continue
		}
		timer.Reset(a.heartbeatInterval())
	}
}

// DeployProgress is the deploy_progress heartbeat extension.
type DeployProgress struct {
	Written int64 `json:"written"`
	Total   int64 `json:"total"`
	Rate    int64 `json:"rate"`
}

// heartbeat does IPA's POST /v1/heartbeat/<uuid>, adding deploy_progress
// while an image is being written.
func (a *Agent) heartbeat(ctx context.Context) error {
	a.mu.Lock()
	api, uuid, tok, adv, ver := a.apiURL, a.nodeUUID, a.token, a.advertised, a.apiVersion
	a.mu.Unlock()
	body := map[string]any{"callback_url": adv, "agent_version": Version}
	hdr := "1.36"
	if versionAtLeast(ver, "1.62") {
		hdr = "1.62"
		body["agent_token"] = tok
	} else if tok != "" {
		body["agent_token"] = tok
	}
	if p := a.progress.Load(); p != nil {
		body["deploy_progress"] = p.snapshot()
	}
	if err := a.call(ctx, http.MethodPost, api+"/v1/heartbeat/"+url.PathEscape(uuid), hdr, body, nil, http.StatusAccepted); err != nil {
		return err
	}
	a.mu.Lock()
	a.heartbeats++
	a.mu.Unlock()
	return nil
}

// forceHeartbeat asks for a heartbeat now (after an asynchronous command
// ends, as IPA does, and with write progress).
func (a *Agent) forceHeartbeat() {
	select {
	case a.force <- struct{}{}:
	default:
	}
}

// call performs one JSON request to the callback API.
func (a *Agent) call(ctx context.Context, method, u, apiVer string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if apiVer != "" {
		req.Header.Set("X-OpenStack-Ironic-API-Version", apiVer)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, stripQuery(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, stripQuery(u), resp.StatusCode, a.redact(strings.TrimSpace(string(data))))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, stripQuery(u), err)
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// stripQuery removes the query string (temp URL signatures, tokens).
func stripQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
