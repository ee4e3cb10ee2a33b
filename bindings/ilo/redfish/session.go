// Package redfish is the Redfish client for iLO 4 (>= 2.30, Oem.Hp), iLO 5
// (Gen10, Oem.Hpe), iLO 6 and 7 (Gen11, Gen12). Standard resources are
// decoded into gofish v0.23 schema types; the HPE OEM parts (power button,
// BootOnNextServerReset, OEM virtual-media actions, licences, BIOS base
// configs, UEFI class) are read and written as raw JSON. Every URI is
// discovered from links, starting at /redfish/v1/. Operations share one
// session per iLO and user (see Sessions), created on first use and
// re-created on 401; when the session
// service refuses (other than bad credentials) the client falls back to
// HTTP basic authentication for that operation.
package redfish

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// session is one operation's view of the iLO's shared session (see
// Shared), bound to the operation's context. It implements gofish's
// schemas.Client so schema objects decoded through it can use it.
type session struct {
	c        *Client
	sh       *Shared
	ctx      context.Context
	op       string
	token    string
	basic    bool
	relogged bool
}

var _ schemas.Client = (*session)(nil)

// withSession runs fn in the client's shared session, logging in first
// when there is none yet. The session outlives the operation: it is
// deleted on idle expiry, at the session set's Close, or (a private
// session) at the client's Close.
func (c *Client) withSession(ctx context.Context, op string, fn func(s *session) error) error {
	c.retryStaleLogouts(ctx)
	sh := c.shared()
	sh.begin()
	defer sh.end()
	s := &session{c: c, sh: sh, ctx: ctx, op: op}
	if err := s.login(); err != nil {
		return err
	}
	return fn(s)
}

// login takes the shared session's token, or creates the session (one
// login at a time per iLO: concurrent operations wait and share it).
func (s *session) login() error {
	root, err := s.c.discover(s.ctx, s.op)
	if err != nil {
		return err
	}
	if root.sessions == "" || s.c.forceBasic() {
		s.basic = true
		return nil
	}
	if tok, _ := s.sh.current(); tok != "" {
		s.token = tok
		return nil
	}
	s.sh.login.Lock()
	defer s.sh.login.Unlock()
	if tok, _ := s.sh.current(); tok != "" {
		s.token = tok
		return nil
	}
	o := s.c.t.Options()
	body, _ := json.Marshal(map[string]string{"UserName": o.Username, "Password": o.Password})
	var resp *iloapi.Response
	err = s.c.t.Retry(s.ctx, s.op, func(ctx context.Context) error {
		r, err := s.c.t.Do(ctx, iloapi.Request{Method: http.MethodPost, Path: root.sessions, Header: jsonHeader(), Body: body})
		if err != nil {
			return err
		}
		resp = r
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		return loginError(s.op, resp)
	case resp.Status >= 200 && resp.Status < 300 && resp.Header.Get("X-Auth-Token") != "":
		tok := resp.Header.Get("X-Auth-Token")
		loc := pathOf(resp.Header.Get("Location"))
		if loc == "" {
			var m map[string]any
			if json.Unmarshal(resp.Body, &m) == nil {
				loc = pathOf(str(m, "@odata.id"))
			}
		}
		s.sh.set(tok, loc, s.c.t)
		s.token = tok
		ev := SessionEvent{Name: "login", Address: o.Address(), Reason: "first use", Session: loc}
		if s.relogged {
			ev.Name, ev.Reason = "relogin", "HTTP 401"
		}
		s.c.event(ev)
		return nil
	}
	// Session service refused for another reason (no session support,
	// session limit reached, ...): fall back to basic auth like sushy,
	// for this operation; the next one tries a session again.
	s.c.logf("session login answered HTTP %d; falling back to basic auth", resp.Status)
	s.basic = true
	return nil
}

func loginError(op string, resp *iloapi.Response) error {
	id, msg := errorInfo(resp.Body)
	se := &iloapi.StatusError{Protocol: "redfish", HTTPStatus: resp.Status, Status: id, Message: msg}
	return iloapi.LoginFailed(op, fmt.Sprintf("iLO refused the credentials (HTTP %d %s)", resp.Status, id), se)
}

// staleSession is a session whose DELETE failed.
type staleSession struct{ token, location string }

// deleteSession DELETEs a session; false means it may still exist.
func deleteSession(ctx context.Context, t *iloapi.Transport, token, location string, logf func(string, ...any)) bool {
	h := http.Header{}
	h.Set("X-Auth-Token", token)
	h.Set("OData-Version", "4.0")
	resp, err := t.Do(ctx, iloapi.Request{Method: http.MethodDelete, Path: location, Header: h})
	switch {
	case err != nil:
		if logf != nil {
			logf("session logout failed: %v", err)
		}
		return false
	case resp.Status >= 500:
		if logf != nil {
			logf("session logout answered HTTP %d", resp.Status)
		}
		return false
	}
	return true // 2xx, or 4xx: the session is gone or unknown
}

func (c *Client) deleteSession(ctx context.Context, token, location string) bool {
	return deleteSession(ctx, c.t, token, location, c.logf)
}

// retryStaleLogouts deletes sessions whose logout failed earlier.
func (c *Client) retryStaleLogouts(ctx context.Context) {
	c.mu.Lock()
	stale := c.stale
	c.stale = nil
	c.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, min(10*time.Second, c.t.Options().Timeout))
	defer cancel()
	var keep []staleSession
	for _, st := range stale {
		if !c.deleteSession(ctx, st.token, st.location) {
			keep = append(keep, st)
		}
	}
	c.mu.Lock()
	c.stale = append(c.stale, keep...)
	c.mu.Unlock()
}

// Close deletes the client's private session (a session from a shared
// Sessions set stays for the other runs: the set deletes it), retries
// failed logouts (best effort, bounded by ctx and client_timeout) and
// drops idle connections.
func (c *Client) Close(ctx context.Context) {
	c.mu.Lock()
	sh := c.sh
	c.mu.Unlock()
	if sh != nil && sh.pool == nil {
		lctx, cancel := context.WithTimeout(ctx, DefaultTimeoutOf(c.t))
		sh.logout(lctx, "close", c.event)
		cancel()
	}
	c.retryStaleLogouts(ctx)
	c.t.Close()
}

// dropSession logs the shared session out (after the credentials changed
// or the iLO was reset), so the next operation logs in again.
func (s *session) dropSession(reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), DefaultTimeoutOf(s.c.t))
	defer cancel()
	s.sh.logout(ctx, reason, s.c.event)
}

func jsonHeader() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("OData-Version", "4.0")
	return h
}

func (s *session) authHeader(h http.Header) {
	if s.basic {
		o := s.c.t.Options()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(o.Username+":"+o.Password)))
	} else if s.token != "" {
		h.Set("X-Auth-Token", s.token)
	}
}

// pathOf returns the path (and query) of an absolute or relative URI.
func pathOf(u string) string {
	if u == "" {
		return ""
	}
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		s := p.EscapedPath()
		if p.RawQuery != "" {
			s += "?" + p.RawQuery
		}
		return s
	}
	return u
}

// request sends one request with retries; it re-creates the session once
// on 401 and follows 301/307/308 redirects. Non-2xx answers become typed
// errors.
func (s *session) request(method, path string, payload any, extra map[string]string) (*iloapi.Response, error) {
	var body []byte
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, iloapi.Errorf(s.op, err, "encode request body: %v", err)
		}
	}
	path = pathOf(path)
	if path == "" {
		return nil, iloapi.Errorf(s.op, nil, "empty Redfish URI")
	}
	for redirects := 0; ; redirects++ {
		h := jsonHeader()
		if payload == nil {
			h.Del("Content-Type")
		}
		for k, v := range extra {
			h.Set(k, v)
		}
		s.authHeader(h)
		if s.c.Debug != nil {
			fmt.Fprintf(s.c.Debug, "> %s %s %s\n", method, path, redactJSON(body))
		}
		var resp *iloapi.Response
		err := s.c.t.Retry(s.ctx, s.op, func(ctx context.Context) error {
			r, err := s.c.t.Do(ctx, iloapi.Request{Method: method, Path: path, Header: h, Body: body})
			if err != nil {
				return err
			}
			if r.Status >= 500 || isBusy(r) {
				id, msg := errorInfo(r.Body)
				return iloapi.Transient(s.op, fmt.Sprintf("%s %s: HTTP %d %s %s", method, path, r.Status, id, msg),
					&iloapi.StatusError{Protocol: "redfish", HTTPStatus: r.Status, Status: id, Message: msg})
			}
			resp = r
			return nil
		})
		if err != nil {
			return nil, err
		}
		if s.c.Debug != nil {
			fmt.Fprintf(s.c.Debug, "< %d %s\n", resp.Status, resp.Body)
		}
		switch resp.Status {
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc := pathOf(resp.Header.Get("Location"))
			if loc == "" || redirects >= 3 {
				return nil, iloapi.Errorf(s.op, nil, "%s %s: too many or empty redirects", method, path)
			}
			path = loc
			continue
		case http.StatusUnauthorized:
			if !s.basic && !s.relogged {
				// The iLO dropped the session (reset, timeout, an
				// administrator): log in again, once.
				s.relogged = true
				s.sh.invalidate(s.token)
				s.token = ""
				if err := s.login(); err != nil {
					return nil, err
				}
				continue
			}
			return nil, loginError(s.op, resp)
		}
		if resp.Status >= 300 {
			return resp, httpError(s.op, method, path, resp)
		}
		return resp, nil
	}
}

// isBusy reports the iLO "not now" answers that are worth retrying.
func isBusy(r *iloapi.Response) bool {
	if r.Status < 400 {
		return false
	}
	id, msg := errorInfo(r.Body)
	all := id + " " + msg
	return strings.Contains(all, "InvalidOperationForSystemState") || strings.Contains(all, "UnableToModifyDuringSystemPOST")
}

func httpError(op, method, path string, r *iloapi.Response) error {
	id, msg := errorInfo(r.Body)
	se := &iloapi.StatusError{Protocol: "redfish", HTTPStatus: r.Status, Status: id, Message: fmt.Sprintf("%s %s: %s", method, path, msg)}
	switch r.Status {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return iloapi.NotSupported(op, se.Error(), se)
	}
	return iloapi.ILOError(op, se)
}

// errorInfo extracts the first MessageId and a message from a Redfish
// (or HP RIS ExtendedError) error body.
func errorInfo(body []byte) (id, msg string) {
	var e struct {
		Error struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Extended []struct {
				MessageID string `json:"MessageId"`
				Message   string `json:"Message"`
			} `json:"@Message.ExtendedInfo"`
		} `json:"error"`
		Messages []struct {
			MessageID string `json:"MessageID"`
		} `json:"Messages"`
	}
	if json.Unmarshal(body, &e) != nil {
		s := strings.TrimSpace(string(body))
		if len(s) > 200 {
			s = s[:200]
		}
		return "", s
	}
	id, msg = e.Error.Code, e.Error.Message
	if len(e.Error.Extended) > 0 {
		id = e.Error.Extended[0].MessageID
		msg = e.Error.Extended[0].Message
		if msg == "" {
			msg = id
		}
	}
	if id == "" && len(e.Messages) > 0 {
		id = e.Messages[0].MessageID
	}
	if msg == "" {
		msg = id
	}
	return id, msg
}

// redactJSON hides Password values in a logged request body.
func redactJSON(b []byte) []byte {
	if !bytes.Contains(b, []byte("Password")) {
		return b
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return []byte("<body hidden>")
	}
	for k := range m {
		if strings.Contains(strings.ToLower(k), "password") {
			m[k] = "******"
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// getJSON GETs path and decodes it as a JSON object.
func (s *session) getJSON(path string) (map[string]any, *iloapi.Response, error) {
	resp, err := s.request(http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	m, err := decodeObject(resp.Body)
	if err != nil {
		return nil, nil, iloapi.Errorf(s.op, err, "GET %s: %v", path, err)
	}
	return m, resp, nil
}

func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("answer is not a JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("answer is not a JSON object")
	}
	return m, nil
}

// getTyped GETs path and decodes it both raw and into a gofish schema type.
func getTyped[T any](s *session, path string, v *T) (map[string]any, *iloapi.Response, error) {
	m, resp, err := s.getJSON(path)
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return nil, nil, iloapi.Errorf(s.op, err, "decode %s: %v", path, err)
	}
	if e, ok := any(v).(interface{ SetClient(schemas.Client) }); ok {
		e.SetClient(s)
	}
	return m, resp, nil
}

// --- schemas.Client ---------------------------------------------------------

func httpResponse(r *iloapi.Response) *http.Response {
	if r == nil {
		return nil
	}
	return &http.Response{StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(r.Body))}
}

func (s *session) gofish(method, url string, payload any, h map[string]string) (*http.Response, error) {
	r, err := s.request(method, url, payload, h)
	if err != nil {
		return nil, err
	}
	return httpResponse(r), nil
}

// GetSettings implements schemas.Client.
func (s *session) GetSettings() schemas.ClientSettings { return schemas.ClientSettings{} }

// Get implements schemas.Client.
func (s *session) Get(url string) (*http.Response, error) {
	return s.gofish(http.MethodGet, url, nil, nil)
}

// GetWithHeaders implements schemas.Client.
func (s *session) GetWithHeaders(url string, h map[string]string) (*http.Response, error) {
	return s.gofish(http.MethodGet, url, nil, h)
}

// Post implements schemas.Client.
func (s *session) Post(url string, payload any) (*http.Response, error) {
	return s.gofish(http.MethodPost, url, payload, nil)
}

// PostWithHeaders implements schemas.Client.
func (s *session) PostWithHeaders(url string, payload any, h map[string]string) (*http.Response, error) {
	return s.gofish(http.MethodPost, url, payload, h)
}

// PostMultipart implements schemas.Client (not used with iLO).
func (s *session) PostMultipart(string, map[string]io.Reader) (*http.Response, error) {
	return nil, iloapi.NotSupported(s.op, "multipart uploads are not supported", nil)
}

// PostMultipartWithHeaders implements schemas.Client (not used with iLO).
func (s *session) PostMultipartWithHeaders(string, map[string]io.Reader, map[string]string) (*http.Response, error) {
	return nil, iloapi.NotSupported(s.op, "multipart uploads are not supported", nil)
}

// Patch implements schemas.Client.
func (s *session) Patch(url string, payload any) (*http.Response, error) {
	return s.gofish(http.MethodPatch, url, payload, nil)
}

// PatchWithHeaders implements schemas.Client.
func (s *session) PatchWithHeaders(url string, payload any, h map[string]string) (*http.Response, error) {
	return s.gofish(http.MethodPatch, url, payload, h)
}

// Put implements schemas.Client.
func (s *session) Put(url string, payload any) (*http.Response, error) {
	return s.gofish(http.MethodPut, url, payload, nil)
}

// PutWithHeaders implements schemas.Client.
func (s *session) PutWithHeaders(url string, payload any, h map[string]string) (*http.Response, error) {
	return s.gofish(http.MethodPut, url, payload, h)
}

// Delete implements schemas.Client.
func (s *session) Delete(url string) (*http.Response, error) {
	return s.gofish(http.MethodDelete, url, nil, nil)
}

// DeleteWithHeaders implements schemas.Client.
func (s *session) DeleteWithHeaders(url string, h map[string]string) (*http.Response, error) {
	return s.gofish(http.MethodDelete, url, nil, h)
}

// getAll GETs the resources at uris concurrently (bounded by the iLO's
// limiter, as every request) and returns them in order. Round trips, not
// CPU, are what a real iLO charges: a collection of n members costs one
// round trip instead of n. Each goroutine uses its own copy of the
// session (a 401 re-login goes through the shared session).
func (s *session) getAll(uris []string) ([]map[string]any, error) {
	out := make([]map[string]any, len(uris))
	if len(uris) <= 1 {
		for i, u := range uris {
			m, _, err := s.getJSON(u)
			if err != nil {
				return nil, err
			}
			out[i] = m
		}
		return out, nil
	}
	errs := make([]error, len(uris))
	var wg sync.WaitGroup
	for i, u := range uris {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := *s
			out[i], _, errs[i] = cp.getJSON(u)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
