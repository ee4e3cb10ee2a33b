// Package secrets decides which values are secret, masks them by key and by
// value, and encrypts them at rest with AES-GCM.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Mask is what every secret is shown as.
const Mask = "******"

// maskKeys is oslo.utils' mask list (strutils._SANITIZE_KEYS) as Ironic uses
// it, matched as case-insensitive substrings of a key, plus a few of ours.
var maskKeys = []string{
	"adminpass", "admin_pass", "password", "admin_password", "auth_token",
	"new_pass", "auth_password", "secret_uuid", "secret", "sys_pswd", "token",
	"configdrive", "chappassword", "encryption_key", "cert_key", "ssh_key",
	"private_key", "passphrase", "pswd", "image_url",
}

// IsSecretKey reports whether a key such as "ilo_password" names a secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	if k == "key" || strings.HasSuffix(k, "_key") { // temp_url_key, swift_temp_url_key, api_key, ...
		return !strings.HasSuffix(k, "public_key")
	}
	for _, m := range maskKeys {
		if strings.Contains(k, m) {
			return true
		}
	}
	return false
}

// MaskMap returns a copy of m with the values of secret keys masked and the
// credentials of URLs masked (MaskURLs), recursing into nested maps and
// lists.
func MaskMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if IsSecretKey(k) && v != nil && v != "" {
			out[k] = Mask
			continue
		}
		out[k] = maskValue(v)
	}
	return out
}

func maskValue(v any) any {
	switch x := v.(type) {
	case string:
		return MaskURLs(x)
	case map[string]any:
		return MaskMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(e)
		}
		return out
	}
	return v
}

// MinLen is the shortest value redacted by value; shorter secrets are still
// masked by key but would mangle ordinary text if replaced everywhere.
const MinLen = 4

// Redactor replaces known secret values with Mask, and masks the
// credentials of every URL (MaskURLs). It is safe for concurrent use. The zero value is not usable; use NewRedactor.
type Redactor struct {
	mu sync.RWMutex
	// byPrefix indexes the values by their first MinLen bytes, each list
	// longest first: String looks every position of its input up once,
	// and Add costs one insertion. (A strings.Replacer over every value,
	// rebuilt at each Add, made registering N secrets O(N²): over a
	// minute of CPU for the 10,000 passwords of a fleet.)
	byPrefix map[string][]string
}

// NewRedactor returns an empty Redactor.
func NewRedactor() *Redactor {
	return &Redactor{byPrefix: map[string][]string{}}
}

// Add registers secret values.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		if len(v) < MinLen || v == Mask {
			continue
		}
		p := v[:MinLen]
		list := r.byPrefix[p]
		// Longest first, so a secret containing another is replaced whole.
		i := sort.Search(len(list), func(i int) bool { return len(list[i]) <= len(v) })
		if slices.Contains(list[i:], v) {
			continue
		}
		r.byPrefix[p] = slices.Insert(list, i, v)
	}
}

// replace masks the known values in s: at each position the longest
// value starting there, then on after it (strings.Replacer's rule).
func (r *Redactor) replace(s string) string {
	if len(r.byPrefix) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i+MinLen <= len(s); {
		if list, ok := r.byPrefix[s[i:i+MinLen]]; ok {
			if k := slices.IndexFunc(list, func(v string) bool { return strings.HasPrefix(s[i:], v) }); k >= 0 {
				b.WriteString(s[last:i])
				b.WriteString(Mask)
				i += len(list[k])
				last = i
				continue
			}
		}
		i++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// AddFromMap registers the values of the secret keys of m (recursively).
func (r *Redactor) AddFromMap(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if IsSecretKey(k) {
				r.Add(x)
			}
		case map[string]any:
			r.AddFromMap(x)
		}
	}
}

// String redacts s: known secret values become Mask, then URL credentials
// are masked. A nil Redactor only masks URL credentials.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		s = r.replace(s)
		r.mu.RUnlock()
	}
	return MaskURLs(s)
}

// Holds reports whether v (a string, or any string inside a JSON-like value,
// map keys included) contains a known secret value or a URL credential,
// that is whether redacting it changes it.
func (r *Redactor) Holds(v any) bool {
	switch x := v.(type) {
	case string:
		return r.String(x) != x
	case map[string]any:
		for k, e := range x {
			if r.Holds(k) || r.Holds(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if r.Holds(e) {
				return true
			}
		}
	}
	return false
}

// Value redacts every string inside a JSON-like value, map keys included,
// and masks the values of secret keys of maps.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			rk := r.String(k)
			if IsSecretKey(k) {
				if s, ok := e.(string); ok && s != "" {
					out[rk] = Mask
					continue
				}
			}
			out[rk] = r.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = r.String(e)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, e := range x {
			rk := r.String(k)
			if IsSecretKey(k) && e != "" {
				out[rk] = Mask
			} else {
				out[rk] = r.String(e)
			}
		}
		return out
	}
	return v
}

// Cipher encrypts secret values at rest with AES-256-GCM.
type Cipher struct {
	aead cipher.AEAD
}

// encPrefix marks an encrypted value in stored JSON.
const encPrefix = "enc:v1:"

// NewCipher returns a Cipher for a 32-byte key.
func NewCipher(key []byte) (*Cipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Cipher{aead: aead}, nil
}

// Encrypt seals plaintext bound to context (e.g. "node-uuid/ilo_password").
func (c *Cipher) Encrypt(plaintext, context string) (string, error) {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	ct := c.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return encPrefix + base64.StdEncoding.EncodeToString(ct), nil
}

// IsEncrypted reports whether s is a value produced by Encrypt.
func IsEncrypted(s string) bool { return strings.HasPrefix(s, encPrefix) }

// Decrypt opens a value produced by Encrypt with the same context.
func (c *Cipher) Decrypt(s, context string) (string, error) {
	if !IsEncrypted(s) {
		return "", errors.New("value is not encrypted")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, encPrefix))
	if err != nil || len(raw) < c.aead.NonceSize() {
		return "", errors.New("encrypted value is malformed")
	}
	n := c.aead.NonceSize()
	pt, err := c.aead.Open(nil, raw[:n], raw[n:], []byte(context))
	if err != nil {
		return "", errors.New("cannot decrypt secret: wrong key (check $LIGHTSOUT_SECRET_KEY or the state dir's secret.key)")
	}
	return string(pt), nil
}

// EnvKey is the environment variable that overrides the key file.
const EnvKey = "LIGHTSOUT_SECRET_KEY"

// LoadKey returns the 32-byte key: from $LIGHTSOUT_SECRET_KEY (64 hex digits,
// base64 of 32 bytes, or any passphrase, hashed with SHA-256) or from the
// file path, which is created with mode 0600 holding a fresh random key when
// it does not exist.
func LoadKey(path string) ([]byte, error) {
	if env := os.Getenv(EnvKey); env != "" {
		return parseKey(env), nil
	}
	data, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(data))
		if b, err := hex.DecodeString(k); err == nil && len(b) == 32 {
			return b, nil
		}
		return nil, fmt.Errorf("secret key file %s is malformed: expected 64 hex digits", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadKey(path)
		}
		return nil, fmt.Errorf("create secret key file: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("write secret key file: %w", err)
	}
	return key, f.Sync()
}

func parseKey(s string) []byte {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b
	}
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
