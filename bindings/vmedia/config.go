package vmedia

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/bindings/swift/tempurl"
	"github.com/lightsout/lightsout/bindings/webstore"
	"github.com/lightsout/lightsout/runtime/module"
)

// WebConfig configures the built-in web store ([lightsout] section).
type WebConfig struct {
	StateDir   string         // [lightsout] state_dir (default $XDG_STATE_HOME/lightsout or ~/.local/state/lightsout)
	Dir        string         // [lightsout] publish_dir (default <state_dir>/published)
	Addr       string         // [lightsout] publish_address (default 127.0.0.1:0)
	PublicURL  string         // [lightsout] publish_url (default http://<listen address>)
	TLSCert    string         // [lightsout] publish_tls_cert
	TLSKey     string         // [lightsout] publish_tls_key
	Digest     tempurl.Digest // [lightsout] publish_digest (sha256)
	KeyFile    string         // <state_dir>/webstore.key (0600, generated once)
	ForceLocal bool           // [ilo] use_web_server_for_images
}

func get(c module.Config, section, key string) string {
	v, _ := c.Get(section, key)
	return strings.TrimSpace(v)
}

// DefaultStateDir is $XDG_STATE_HOME/lightsout, else ~/.local/state/lightsout.
func DefaultStateDir() string {
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "lightsout")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "lightsout")
	}
	return filepath.Join(os.TempDir(), "lightsout-state")
}

// WebConfigFrom reads the web store options.
func WebConfigFrom(c module.Config) (WebConfig, error) {
	w := WebConfig{
		StateDir:  get(c, "lightsout", "state_dir"),
		Dir:       get(c, "lightsout", "publish_dir"),
		Addr:      get(c, "lightsout", "publish_address"),
		PublicURL: get(c, "lightsout", "publish_url"),
		TLSCert:   get(c, "lightsout", "publish_tls_cert"),
		TLSKey:    get(c, "lightsout", "publish_tls_key"),
	}
	if w.StateDir == "" {
		w.StateDir = DefaultStateDir()
	}
	if w.Dir == "" {
		w.Dir = filepath.Join(w.StateDir, "published")
	}
	if w.Addr == "" {
		w.Addr = webstore.DefaultAddr
	}
	w.KeyFile = filepath.Join(w.StateDir, "webstore.key")
	if (w.TLSCert == "") != (w.TLSKey == "") {
		return w, fmt.Errorf("[lightsout] publish_tls_cert and publish_tls_key must be set together")
	}
	d, err := tempurl.ParseDigest(get(c, "lightsout", "publish_digest"))
	if err != nil {
		return w, fmt.Errorf("[lightsout] publish_digest: %w", err)
	}
	w.Digest = d
	if v := get(c, "ilo", "use_web_server_for_images"); v != "" {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return w, fmt.Errorf("[ilo] use_web_server_for_images = %q: want true or false", v)
		}
		w.ForceLocal = b
	}
	return w, nil
}

// StartWeb creates and starts a web store for w; it runs until ctx is done
// or it is closed.
func StartWeb(ctx context.Context, w WebConfig) (*webstore.Server, error) {
	key, err := webstore.LoadOrCreateKey(w.KeyFile)
	if err != nil {
		return nil, err
	}
	s, err := webstore.New(w.Dir, key, w.Addr)
	if err != nil {
		return nil, err
	}
	s.PublicURL, s.TLSCertFile, s.TLSKeyFile, s.Digest = w.PublicURL, w.TLSCert, w.TLSKey, w.Digest
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// UseSwift reports whether the configuration selects Swift as the store.
func UseSwift(sc swift.Config, w WebConfig) bool {
	return sc.Configured() && !w.ForceLocal
}

// defaultExpiry is [ilo] swift_object_expiry_timeout, used by both stores.
func defaultExpiry(sc swift.Config) time.Duration {
	if sc.Expiry > 0 {
		return sc.Expiry
	}
	return swift.DefaultExpiry
}
