// Package config loads lightsout's INI configuration: Ironic's section and
// option names wherever they exist ([ilo], [glance], [swift], [deploy],
// [conductor], [pxe], [keystone_authtoken]) plus [lightsout].
package config

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"

	"github.com/lightsout/lightsout/runtime/secrets"
)

// EnvConfig names the config file when --config is not given.
const EnvConfig = "LIGHTSOUT_CONFIG"

// SystemPath is read when neither --config nor $LIGHTSOUT_CONFIG is set.
const SystemPath = "/etc/lightsout/lightsout.conf"

// Option is a known configuration option.
type Option struct {
	Section, Key, Default, Help string
}

// Value is an effective option value and where it came from.
type Value struct {
	Section, Key, Value string
	// Source is "default", "file:line" or "flag".
	Source string
	Secret bool
}

// Config is the effective configuration. It is read-only after Load.
type Config struct {
	// File is the file that was read ("" when running on defaults).
	File     string
	values   map[string]Value // "section.key"
	Warnings []string
}

// Load reads the configuration: path (from --config) if set, else
// $LIGHTSOUT_CONFIG, else /etc/lightsout/lightsout.conf when it exists,
// else built-in defaults. An explicitly named file must exist and parse.
func Load(path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		if env := os.Getenv(EnvConfig); env != "" {
			path, explicit = env, true
		} else if _, err := os.Stat(SystemPath); err == nil {
			path = SystemPath
		}
	}
	c := &Config{values: map[string]Value{}}
	for _, o := range Known() {
		c.values[o.Section+"."+o.Key] = Value{Section: o.Section, Key: o.Key, Value: o.Default, Source: "default",
			Secret: secrets.IsSecretKey(o.Key)}
	}
	if path == "" {
		return c.finish()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return c.finish()
		}
		return nil, fmt.Errorf("config file %s: %w (pass --config FILE or fix its permissions)", path, err)
	}
	f, err := ini.LoadSources(ini.LoadOptions{AllowPythonMultilineValues: true, SpaceBeforeInlineComment: true}, data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	c.File = path
	lines := keyLines(string(data))
	for _, sec := range f.Sections() {
		name := sec.Name()
		if name == ini.DefaultSection && len(sec.Keys()) == 0 {
			continue
		}
		if name == ini.DefaultSection {
			name = "DEFAULT"
		}
		for _, k := range sec.Keys() {
			id := name + "." + k.Name()
			line := lines[id]
			src := fmt.Sprintf("%s:%d", path, line)
			if _, known := c.values[id]; !known {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s: unknown option %q in section [%s] (ignored%s; see `lightsout config show --all`)", src, k.Name(), name, suggest(name, k.Name())))
			}
			c.values[id] = Value{Section: name, Key: k.Name(), Value: k.Value(), Source: src, Secret: secrets.IsSecretKey(k.Name())}
		}
	}
	return c.finish()
}

// finish applies derived defaults (state dir, database path) and checks types.
func (c *Config) finish() (*Config, error) {
	if v := c.values["lightsout.state_dir"]; v.Value == "" {
		v.Value, v.Source = DefaultStateDir(), "default"
		c.values["lightsout.state_dir"] = v
	}
	if v := c.values["lightsout.database"]; v.Value == "" {
		v.Value = filepath.Join(c.StateDir(), "lightsout.db")
		c.values["lightsout.database"] = v
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// keyLines maps "section.key" to its line number in an INI text.
func keyLines(text string) map[string]int {
	out := map[string]int{}
	sec := "DEFAULT"
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && strings.HasSuffix(l, "]"):
			sec = strings.TrimSpace(l[1 : len(l)-1])
		default:
			if i := strings.IndexAny(l, "=:"); i > 0 {
				id := sec + "." + strings.TrimSpace(l[:i])
				if _, seen := out[id]; !seen {
					out[id] = n
				}
			}
		}
	}
	return out
}

// DefaultStateDir is $XDG_STATE_HOME/lightsout or ~/.local/state/lightsout.
func DefaultStateDir() string {
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "lightsout")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), "lightsout-state")
	}
	return filepath.Join(home, ".local", "state", "lightsout")
}

// Set overrides an option (from a command-line flag).
func (c *Config) Set(section, key, value string) {
	c.values[section+"."+key] = Value{Section: section, Key: key, Value: value, Source: "flag", Secret: secrets.IsSecretKey(key)}
}

// Get implements module.Config.
func (c *Config) Get(section, key string) (string, bool) {
	v, ok := c.values[section+"."+key]
	if !ok {
		return "", false
	}
	return v.Value, true
}

// String returns [section] key or "".
func (c *Config) String(section, key string) string {
	v, _ := c.Get(section, key)
	return v
}

// Int returns [section] key as an integer, or def when unset or invalid.
func (c *Config) Int(section, key string, def int) int {
	v, ok := c.Get(section, key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def
	}
	return n
}

// Bool returns [section] key as a boolean, or def.
func (c *Config) Bool(section, key string, def bool) bool {
	v, ok := c.Get(section, key)
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
	if err != nil {
		return def
	}
	return b
}

// Duration returns [section] key as a duration ("30s", or a bare number of
// seconds), or def.
func (c *Config) Duration(section, key string, def time.Duration) time.Duration {
	v, ok := c.Get(section, key)
	if !ok || v == "" {
		return def
	}
	if d, err := parseDuration(v); err == nil {
		return d
	}
	return def
}

// StateDir is [lightsout] state_dir.
func (c *Config) StateDir() string { return c.String("lightsout", "state_dir") }

// Database is [lightsout] database (the SQLite file when [database]
// connection is unset).
func (c *Config) Database() string { return c.String("lightsout", "database") }

// DatabaseConnection is the store's connection URL: [database] connection,
// or sqlite://<[lightsout] database> when it is unset.
func (c *Config) DatabaseConnection() string {
	if v := c.String("database", "connection"); v != "" {
		return v
	}
	return "sqlite://" + c.Database()
}

// ScriptsPath is [lightsout] scripts_path split on ':' or ','.
func (c *Config) ScriptsPath() []string {
	var out []string
	for _, p := range strings.FieldsFunc(c.String("lightsout", "scripts_path"), func(r rune) bool { return r == ':' || r == ',' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Values lists every effective option sorted by section and key, secrets
// masked.
func (c *Config) Values() []Value {
	out := make([]Value, 0, len(c.values))
	for _, v := range c.values {
		if v.Secret && v.Value != "" {
			v.Value = secrets.Mask
		}
		v.Value = secrets.MaskURLs(v.Value) // [database] connection's password
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Section != out[j].Section {
			return out[i].Section < out[j].Section
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// urlPassword returns the password of a URL value with credentials.
func urlPassword(v string) string {
	if !strings.Contains(v, "://") || !strings.Contains(v, "@") {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// SecretValues returns the clear values of every secret option, for
// redaction.
func (c *Config) SecretValues() []string {
	var out []string
	for _, v := range c.values {
		if v.Secret && v.Value != "" {
			out = append(out, v.Value)
		}
		if pw := urlPassword(v.Value); pw != "" {
			out = append(out, pw) // [database] connection = postgresql://user:pw@host/db
		}
	}
	return out
}
