// Package agent is the client side of the ironic-python-agent (IPA)
// command API (`/v1/commands` on the ramdisk's agent URL) and the Lua
// module `agent` that deploy and clean playbooks use to wait for a
// ramdisk's heartbeat and run agent commands such as
// standby.prepare_image or clean.execute_clean_step.
package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Command statuses as reported by IPA.
const (
	StatusRunning              = "RUNNING"
	StatusSucceeded            = "SUCCEEDED"
	StatusFailed               = "FAILED"
	StatusCleanVersionMismatch = "CLEAN_VERSION_MISMATCH"
)

// CommandResult is one entry of IPA's command list, as serialised by IPA's
// BaseCommandResult.
type CommandResult struct {
	ID            string `json:"id"`
	CommandName   string `json:"command_name"`
	CommandStatus string `json:"command_status"`
	// CommandResult is usually an object ({"result": "..."} for commands
	// returning a string), or null.
	CommandResult any `json:"command_result"`
	// CommandError is null or IPA's RESTError {type, code, message, details}.
	CommandError any `json:"command_error"`
}

// Done reports whether the command is no longer running.
func (c CommandResult) Done() bool { return c.CommandStatus != StatusRunning }

// ErrorMessage summarises CommandError ("" when there is none).
func (c CommandResult) ErrorMessage() string {
	switch e := c.CommandError.(type) {
	case nil:
		return ""
	case string:
		return e
	case map[string]any:
		var parts []string
		if t, _ := e["type"].(string); t != "" {
			parts = append(parts, t)
		}
		msg, _ := e["message"].(string)
		details, _ := e["details"].(string)
		// IPA's ISCSIError repeats its message at the start of details
		// ("Error starting iSCSI target: Error starting iSCSI target: …").
		repeats := msg != "" && details != msg && strings.HasPrefix(details, msg)
		if msg != "" && !repeats {
			parts = append(parts, msg)
		}
		if details != "" && details != msg {
			parts = append(parts, details)
		}
		if len(parts) > 0 {
			return strings.Join(parts, ": ")
		}
	}
	b, _ := json.Marshal(c.CommandError)
	return string(b)
}

// Map returns the result as a JSON-like map (for Lua).
func (c CommandResult) Map() map[string]any {
	return map[string]any{
		"id":             c.ID,
		"command_name":   c.CommandName,
		"command_status": c.CommandStatus,
		"command_result": c.CommandResult,
		"command_error":  c.CommandError,
	}
}

// Client calls an agent's /v1/commands API. The zero value uses
// http.DefaultClient; every call is bounded by its context.
type Client struct {
	HTTP *http.Client
}

// HTTPError is a non-2xx answer from the agent.
type HTTPError struct {
	Status  int
	Message string // IPA's faultstring, or the body
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("agent answered HTTP %d: %s", e.Status, e.Message)
}

// NewClientWithCA returns a client that trusts only the certificates in
// caPEM: IPA's agent_verify_ca, the self-signed certificate it generates
// for its API when Ironic's API is ≥ 1.68 (IPA's enable_auto_tls, on by
// default; the certificate names the advertised IP address).
func NewClientWithCA(caPEM string) (*Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("agent_verify_ca holds no PEM certificate: the agent's https API cannot be verified")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &Client{HTTP: &http.Client{Transport: tr}}, nil
}

func (c *Client) http() *http.Client {
	if c != nil && c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Run sends POST <agentURL>/v1/commands/?wait=<wait>&agent_token=<token>
// with {"name": name, "params": params}. With wait the agent answers when
// the command is done; otherwise it answers at once with status RUNNING
// for asynchronous commands.
func (c *Client) Run(ctx context.Context, agentURL, token, name string, params map[string]any, wait bool) (CommandResult, error) {
	if params == nil {
		params = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"name": name, "params": params})
	if err != nil {
		return CommandResult{}, fmt.Errorf("agent command %s: encode params: %w", name, err)
	}
	q := url.Values{"wait": {fmt.Sprint(wait)}}
	var res CommandResult
	if err := c.do(ctx, http.MethodPost, agentURL, "/v1/commands/", q, token, body, &res); err != nil {
		return CommandResult{}, fmt.Errorf("agent command %s: %w", name, err)
	}
	return res, nil
}

// List returns GET <agentURL>/v1/commands/ in execution order.
func (c *Client) List(ctx context.Context, agentURL, token string) ([]CommandResult, error) {
	var res struct {
		Commands []CommandResult `json:"commands"`
	}
	if err := c.do(ctx, http.MethodGet, agentURL, "/v1/commands/", url.Values{}, token, nil, &res); err != nil {
		return nil, fmt.Errorf("agent list commands: %w", err)
	}
	return res.Commands, nil
}

// Get returns GET <agentURL>/v1/commands/<id> (with wait, when the command
// is done).
func (c *Client) Get(ctx context.Context, agentURL, token, id string, wait bool) (CommandResult, error) {
	q := url.Values{}
	if wait {
		q.Set("wait", "true")
	}
	var res CommandResult
	if err := c.do(ctx, http.MethodGet, agentURL, "/v1/commands/"+url.PathEscape(id), q, token, nil, &res); err != nil {
		return CommandResult{}, fmt.Errorf("agent get command %s: %w", id, err)
	}
	return res, nil
}

// do performs one request. Errors never contain the token: transport
// errors are reported with the URL stripped of its query string.
func (c *Client) do(ctx context.Context, method, agentURL, path string, q url.Values, token string, body []byte, out any) error {
	u, err := url.Parse(strings.TrimRight(agentURL, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid agent URL %q: want http(s)://host:port", agentURL)
	}
	if token != "" {
		q.Set("agent_token", token)
	}
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, redactURL(u), err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, redactURL(u), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, redactURL(u), err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(data))
		var f struct {
			Faultstring string `json:"faultstring"`
		}
		if json.Unmarshal(data, &f) == nil && f.Faultstring != "" {
			msg = f.Faultstring
		}
		if token != "" {
			msg = strings.ReplaceAll(msg, token, "******")
		}
		return &HTTPError{Status: resp.StatusCode, Message: msg}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, redactURL(u), err)
	}
	return nil
}

// redactURL returns u without its query string (which holds agent_token).
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}
