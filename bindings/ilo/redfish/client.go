package redfish

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// Client is a Redfish client for one iLO. It implements iloapi.Client.
type Client struct {
	t *iloapi.Transport
	// Debug, when set, receives every request (passwords hidden) and answer.
	Debug io.Writer
	// BasicAuth skips sessions altogether.
	BasicAuth bool
	// ResetPollInterval and ResetSettle tune ResetILO's wait (5 s, 10 s).
	ResetPollInterval, ResetSettle time.Duration

	// OnSession, when set, receives this client's session logins and
	// logouts (for the run record).
	OnSession func(SessionEvent)

	mu    sync.Mutex
	root  *rootInfo
	stale []staleSession
	sh    *Shared
	set   *Sessions // nil: a private session
}

// UseSessions makes the client share the sessions of set (one per iLO
// and user for the whole process) instead of a private one.
func (c *Client) UseSessions(set *Sessions) {
	c.mu.Lock()
	c.set = set
	c.sh = set.For(c.t.Options())
	c.mu.Unlock()
}

// shared returns the client's shared session (a private one by default).
func (c *Client) shared() *Shared {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.set != nil:
		// Looked up per operation: the set forgets an iLO whose session
		// was logged out (idle), and a long run must then share the new
		// entry with the other runs, not keep a session of its own.
		c.sh = c.set.For(c.t.Options())
	case c.sh == nil:
		c.sh = &Shared{address: c.t.Options().Address()}
	}
	return c.sh
}

func (c *Client) event(e SessionEvent) {
	if c.OnSession != nil {
		c.OnSession(e)
	}
}

var _ iloapi.Client = (*Client)(nil)

// New returns a Redfish client over t.
func New(t *iloapi.Transport) *Client {
	return &Client{t: t, ResetPollInterval: 2 * time.Second, ResetSettle: 10 * time.Second}
}

func (c *Client) forceBasic() bool { return c.BasicAuth }

func (c *Client) logf(format string, args ...any) {
	if c.Debug != nil {
		fmt.Fprintf(c.Debug, "# "+format+"\n", args...)
	}
}

// rootInfo is what the service root and the first collection walks tell.
type rootInfo struct {
	sessions, systems, managers, chassis, accounts string
	oemKey                                         string // "Hpe" or "Hp" from the root
	product, managerType, firmware                 string // Product, Oem.Hp(e).Manager[0]
	system, manager                                string // first members, found lazily
}

// discover reads /redfish/v1/ without credentials (as sushy does) once.
func (c *Client) discover(ctx context.Context, op string) (*rootInfo, error) {
	c.mu.Lock()
	r := c.root
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var resp *iloapi.Response
	err := c.t.Retry(ctx, op, func(ctx context.Context) error {
		h := http.Header{}
		h.Set("Accept", "application/json")
		h.Set("OData-Version", "4.0")
		x, err := c.t.Do(ctx, iloapi.Request{Method: http.MethodGet, Path: "/redfish/v1/", Header: h})
		if err != nil {
			return err
		}
		if x.Status >= 500 {
			return iloapi.Transient(op, fmt.Sprintf("GET /redfish/v1/: HTTP %d", x.Status), nil)
		}
		resp = x
		return nil
	})
	if err != nil {
		return nil, err
	}
	if resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed {
		return nil, iloapi.Unavailable(op, "redfish", fmt.Sprintf("GET /redfish/v1/ answered HTTP %d", resp.Status))
	}
	if resp.Status >= 300 && resp.Status != http.StatusUnauthorized {
		return nil, httpError(op, http.MethodGet, "/redfish/v1/", resp)
	}
	m, err := decodeObject(resp.Body)
	if err != nil {
		if resp.Status == http.StatusUnauthorized {
			return nil, loginError(op, resp)
		}
		return nil, iloapi.Unavailable(op, "redfish", "GET /redfish/v1/: "+err.Error())
	}
	r = &rootInfo{
		sessions: link(m, "Links", "Sessions"),
		systems:  link(m, "Systems"),
		managers: link(m, "Managers"),
		chassis:  link(m, "Chassis"),
		accounts: link(m, "AccountService"),
	}
	var oem map[string]any
	oem, r.oemKey = Oem(m)
	r.product = str(m, "Product")
	if mgrs := list(oem, "Manager"); len(mgrs) > 0 {
		if mg, ok := mgrs[0].(map[string]any); ok {
			r.managerType, r.firmware = str(mg, "ManagerType"), str(mg, "ManagerFirmwareVersion")
		}
	}
	if r.sessions == "" {
		if ss := link(m, "SessionService"); ss != "" {
			r.sessions = strings.TrimSuffix(ss, "/") + "/Sessions/"
		}
	}
	if r.systems == "" {
		return nil, iloapi.Unavailable(op, "redfish", "service root has no Systems link")
	}
	c.mu.Lock()
	if c.root == nil {
		c.root = r
	}
	r = c.root
	c.mu.Unlock()
	return r, nil
}

// firstMember returns the first member of a collection, cached in *slot.
func (s *session) firstMember(collection string, slot *string, what string) (string, error) {
	s.c.mu.Lock()
	v := *slot
	s.c.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if collection == "" {
		return "", iloapi.NotSupported(s.op, "the service root has no "+what+" collection", nil)
	}
	m, _, err := s.getJSON(collection)
	if err != nil {
		return "", err
	}
	ms := members(m)
	if len(ms) == 0 {
		return "", iloapi.Errorf(s.op, nil, "%s collection %s is empty", what, collection)
	}
	s.c.mu.Lock()
	*slot = ms[0]
	s.c.mu.Unlock()
	return ms[0], nil
}

// system GETs the first ComputerSystem (raw and typed).
func (s *session) system() (map[string]any, *schemas.ComputerSystem, *iloapi.Response, error) {
	r := s.c.root
	uri, err := s.firstMember(r.systems, &r.system, "Systems")
	if err != nil {
		return nil, nil, nil, err
	}
	var sys schemas.ComputerSystem
	m, resp, err := getTyped(s, uri, &sys)
	if err != nil {
		return nil, nil, nil, err
	}
	if sys.ODataID == "" {
		sys.ODataID = uri
	}
	return m, &sys, resp, nil
}

// manager GETs the first Manager.
func (s *session) manager() (map[string]any, *schemas.Manager, error) {
	r := s.c.root
	uri, err := s.firstMember(r.managers, &r.manager, "Managers")
	if err != nil {
		return nil, nil, err
	}
	var mgr schemas.Manager
	m, _, err := getTyped(s, uri, &mgr)
	if err != nil {
		return nil, nil, err
	}
	if mgr.ODataID == "" {
		mgr.ODataID = uri
	}
	return m, &mgr, nil
}

// run runs fn as operation op in one session (deleted afterwards).
func (c *Client) run(ctx context.Context, op string, fn func(s *session) error) error {
	return iloapi.WithOperation(op, c.withSession(ctx, op, fn))
}

// read is run for an operation that reads a value: fn stores it in *out.
func read[T any](ctx context.Context, c *Client, op string, fn func(s *session, out *T) error) (T, error) {
	var out T
	err := c.run(ctx, op, func(s *session) error { return fn(s, &out) })
	return out, err
}

// ServiceRoot is what the unauthenticated Redfish service root tells
// about the iLO.
type ServiceRoot struct {
	// Product is the server model ("ProLiant DL380a Gen11"), when given.
	Product string
	// ManagerType is "iLO 4", "iLO 5", "iLO 6" or "iLO 7" (Oem.Hp(e).Manager).
	ManagerType string
	// FirmwareVersion is the iLO firmware ("2.70", "1.13.01").
	FirmwareVersion string
}

// ILOGeneration is the iLO major version in ManagerType (0 when unknown).
func (r ServiceRoot) ILOGeneration() int {
	t := strings.TrimSpace(strings.TrimPrefix(strings.ToLower(r.ManagerType), "ilo"))
	if len(t) > 0 && t[0] >= '0' && t[0] <= '9' {
		n := 0
		for i := 0; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
			n = n*10 + int(t[i]-'0')
		}
		return n
	}
	return 0
}

// ServiceRoot reads GET /redfish/v1/ (once per client, without
// credentials). A missing Redfish service is an Unavailable error.
func (c *Client) ServiceRoot(ctx context.Context) (ServiceRoot, error) {
	r, err := c.discover(ctx, "probe")
	if err != nil {
		return ServiceRoot{}, err
	}
	return ServiceRoot{Product: r.product, ManagerType: r.managerType, FirmwareVersion: r.firmware}, nil
}

// GetJSON GETs one resource in the shared session, as op (read-only; for
// `lightsout capture`).
func (c *Client) GetJSON(ctx context.Context, op, path string) (map[string]any, error) {
	return read(ctx, c, op, func(s *session, out *map[string]any) error {
		m, _, err := s.getJSON(path)
		*out = m
		return err
	})
}
