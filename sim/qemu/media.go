package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// aliasClient returns a copy of c whose connections to alias (the host as
// the VM sees it, e.g. 10.0.2.2) go to 127.0.0.1 instead: same port, same
// URL, same TLS server name (the iLO and the VM share the management view
// of the host).
func aliasClient(c *http.Client, alias string) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	base, ok := c.Transport.(*http.Transport)
	if c.Transport == nil {
		base, ok = http.DefaultTransport.(*http.Transport)
	}
	out := *c
	if !ok || alias == "" {
		return &out
	}
	t := base.Clone()
	d := &net.Dialer{Timeout: 10 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, p, err := net.SplitHostPort(addr); err == nil && h == alias {
			addr = net.JoinHostPort("127.0.0.1", p)
		}
		return d.DialContext(ctx, network, addr)
	}
	out.Transport = t
	return &out
}

// fetch downloads rawURL into path (through a temporary file). file:// URLs
// and plain paths are copied.
func fetch(ctx context.Context, c *http.Client, rawURL, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("media URL: %w", err)
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL: its query may hold a temp-URL signature
			}
			return fmt.Errorf("GET %s: %w", safeURL(u), err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("GET %s: %s", safeURL(u), resp.Status)
		}
		body = resp.Body
	case "file", "":
		f, err := os.Open(u.Path)
		if err != nil {
			return err
		}
		body = f
	default:
		return fmt.Errorf("media URL scheme %q: the iLO fetches http, https (and file for tests)", u.Scheme)
	}
	defer body.Close()
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// safeURL is u without user info and query (temp-URL signatures), for
// messages.
func safeURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery = nil, "", false
	if u.RawQuery != "" {
		return c.String() + "?..."
	}
	return c.String()
}
