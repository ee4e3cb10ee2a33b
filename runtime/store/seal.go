package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/runtime/secrets"
)

// What is encrypted at rest (AES-256-GCM with the state dir's key, bound to
// the node and field so a value cannot be moved to another node or key):
//
//   - driver_info: the values of secret keys (secrets.IsSecretKey);
//   - driver_info, properties, instance_info and driver_internal_info: any
//     value whose key is secret-looking (image_url included), and any value
//     the store's sensitivity check flags (SetSensitive: a value holding a
//     known secret or a URL credential, e.g. a password a script copied);
//   - artifact locations the check flags (temp-URL signatures).
//
// Values are decrypted when read: a later run gets the real value (an
// image_url, a location to delete); every output masks them. A string
// value is stored as "enc:v1:…"; a table or list as "json:enc:v1:…" (its
// JSON, encrypted). A plain value that merely looks encrypted is encrypted
// too, so reading it back never fails.

// jsonPrefix marks an encrypted JSON value (a table stored by a script).
const jsonPrefix = "json:"

// SetSensitive sets the check that decides whether a value (a string, or a
// JSON-like map or list) must be encrypted at rest besides the values of
// secret keys; the runtime passes its redactor's Holds, so values holding a
// known secret or a URL credential are never stored in clear. Call it
// before the store is used concurrently.
func (s *DB) SetSensitive(fn func(v any) bool) { s.sensitive = fn }

func (s *DB) isSensitive(v any) bool {
	if s.sensitive != nil {
		return s.sensitive(v)
	}
	var none *secrets.Redactor // masks URL credentials only
	return none.Holds(v)
}

// fieldContext is the AEAD context of key k of a node's JSON field;
// driver_info keeps its historical "<uuid>/<key>".
func fieldContext(uuid, field, k string) string {
	if field == "driver_info" {
		return uuid + "/" + k
	}
	return uuid + "/" + field + "/" + k
}

// looksSealed reports whether a plain string would be mistaken for a
// sealed value when read back.
func looksSealed(s string) bool {
	return secrets.IsEncrypted(s) || strings.HasPrefix(s, jsonPrefix+"enc:")
}

// sealMap returns a copy of m with the values to protect encrypted.
func (s *DB) sealMap(uuid, field string, m map[string]any) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		ctx := fieldContext(uuid, field, k)
		secretKey := secrets.IsSecretKey(k)
		switch x := v.(type) {
		case nil:
			out[k] = v
		case string:
			if x == "" || !(secretKey || looksSealed(x) || s.isSensitive(x)) {
				out[k] = v
				continue
			}
			enc, err := s.cipher.Encrypt(x, ctx)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", field, k, err)
			}
			out[k] = enc
		case bool, float64, int, int64, json.Number:
			out[k] = v
		default:
			if !secretKey && !s.isSensitive(v) {
				out[k] = v
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", field, k, err)
			}
			enc, err := s.cipher.Encrypt(string(b), ctx+"#json")
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", field, k, err)
			}
			out[k] = jsonPrefix + enc
		}
	}
	return out, nil
}

// openMap decrypts in place the values sealMap encrypted.
func (s *DB) openMap(name, uuid, field string, m map[string]any) error {
	for k, v := range m {
		str, ok := v.(string)
		if !ok {
			continue
		}
		ctx := fieldContext(uuid, field, k)
		switch {
		case secrets.IsEncrypted(str):
			pt, err := s.cipher.Decrypt(str, ctx)
			if err != nil {
				return fmt.Errorf("node %s %s %s: %w", name, field, k, err)
			}
			m[k] = pt
		case strings.HasPrefix(str, jsonPrefix) && secrets.IsEncrypted(str[len(jsonPrefix):]):
			pt, err := s.cipher.Decrypt(str[len(jsonPrefix):], ctx+"#json")
			if err != nil {
				return fmt.Errorf("node %s %s %s: %w", name, field, k, err)
			}
			var val any
			if err := json.Unmarshal([]byte(pt), &val); err != nil {
				return fmt.Errorf("node %s %s %s: decode decrypted value: %w", name, field, k, err)
			}
			m[k] = val
		}
	}
	return nil
}

// artifactContext binds an artifact location to its run and kind.
func artifactContext(a *Artifact) string {
	return "artifact/" + strconv.FormatInt(a.RunID, 10) + "/" + a.Kind
}

// sealLocation returns the stored form of an artifact's location.
func (s *DB) sealLocation(a *Artifact) (string, error) {
	if a.Location == "" || !(looksSealed(a.Location) || s.isSensitive(a.Location)) {
		return a.Location, nil
	}
	return s.cipher.Encrypt(a.Location, artifactContext(a))
}

// openLocation decrypts an artifact's stored location in place.
func (s *DB) openLocation(a *Artifact) error {
	if !secrets.IsEncrypted(a.Location) {
		return nil
	}
	pt, err := s.cipher.Decrypt(a.Location, artifactContext(a))
	if err != nil {
		return fmt.Errorf("artifact %d location: %w", a.ID, err)
	}
	a.Location = pt
	return nil
}
