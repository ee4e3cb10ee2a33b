// Package tempurl signs and verifies OpenStack Swift temporary URLs
// (the tempurl middleware's format), shared by the Swift client and the
// built-in web store.
//
// The signature is HMAC(key, "METHOD\nEXPIRES\nPATH") in lower-case hex,
// where PATH is the unescaped request path (e.g. /v1/AUTH_test/c/o) and
// EXPIRES is a Unix time. The URL carries it as
// ?temp_url_sig=<hex>&temp_url_expires=<unix>[&filename=<name>].
// Swift tells the digest apart by the hex length (40 sha1, 64 sha256,
// 128 sha512) or a "sha512:" base64 prefix; so does [Verify].
package tempurl

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Digest is an HMAC hash for temp URL signatures.
type Digest string

// Supported digests. SHA256 is the default (Swift marks SHA1 deprecated).
const (
	SHA1   Digest = "sha1"
	SHA256 Digest = "sha256"
	SHA512 Digest = "sha512"
)

// ParseDigest parses a digest name; "" gives SHA256.
func ParseDigest(s string) (Digest, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "sha256":
		return SHA256, nil
	case "sha1":
		return SHA1, nil
	case "sha512":
		return SHA512, nil
	}
	return "", fmt.Errorf("unknown temp URL digest %q: use sha256 (default), sha1 or sha512", s)
}

func (d Digest) hash() (func() hash.Hash, error) {
	switch d {
	case SHA1:
		return sha1.New, nil
	case SHA256, "":
		return sha256.New, nil
	case SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unknown temp URL digest %q", string(d))
}

// Sign returns the signature, in Swift's format: lower-case hex for sha1 and
// sha256, "sha512:" + unpadded base64url for sha512 (as swiftclient writes
// it), of of method and path valid until expires.
func Sign(d Digest, key, method, path string, expires time.Time) (string, error) {
	h, err := d.hash()
	if err != nil {
		return "", err
	}
	sum := mac(h, key, method, path, expires)
	if d == SHA512 {
		// swiftclient's format for sha512: prefixed, unpadded base64url.
		return "sha512:" + base64.RawURLEncoding.EncodeToString(sum), nil
	}
	return hex.EncodeToString(sum), nil
}

func mac(h func() hash.Hash, key, method, path string, expires time.Time) []byte {
	m := hmac.New(h, []byte(key))
	fmt.Fprintf(m, "%s\n%d\n%s", method, expires.Unix(), path)
	return m.Sum(nil)
}

// Query returns the temp URL query string (without '?') for path.
// filename, when set, is added as Swift's filename parameter (not signed).
func Query(d Digest, key, method, path string, expires time.Time, filename string) (string, error) {
	sig, err := Sign(d, key, method, path, expires)
	if err != nil {
		return "", err
	}
	q := "temp_url_sig=" + sig + "&temp_url_expires=" + strconv.FormatInt(expires.Unix(), 10)
	if filename != "" {
		q += "&filename=" + url.QueryEscape(filename)
	}
	return q, nil
}

// Errors returned by Verify. ErrMissing maps to HTTP 401, the others to 403.
var (
	ErrMissing = errors.New("missing temp_url_sig or temp_url_expires")
	ErrExpired = errors.New("temp URL expired")
	ErrBadSig  = errors.New("temp URL signature does not match")
	ErrBadExp  = errors.New("temp_url_expires is not a Unix time")
)

// decodeSig returns the digest and raw bytes of a signature: hex (digest by
// length) or "<digest>:<base64>".
func decodeSig(sig string) (Digest, []byte) {
	if name, b64, ok := strings.Cut(sig, ":"); ok {
		d, err := ParseDigest(name)
		if err != nil || name == "" {
			return "", nil
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
		if err != nil {
			raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
			if err != nil {
				return "", nil
			}
		}
		return d, raw
	}
	raw, err := hex.DecodeString(sig)
	if err != nil {
		return "", nil
	}
	switch len(raw) {
	case sha1.Size:
		return SHA1, raw
	case sha256.Size:
		return SHA256, raw
	case sha512.Size:
		return SHA512, raw
	}
	return "", nil
}

// Verify checks a request's temp URL parameters for method and path at
// time now. A GET signature also allows HEAD, as in Swift. The digest is
// chosen from the signature's length.
func Verify(key, method, path string, q url.Values, now time.Time) error {
	sig, exp := q.Get("temp_url_sig"), q.Get("temp_url_expires")
	if sig == "" || exp == "" {
		return ErrMissing
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrBadExp
	}
	expires := time.Unix(e, 0)
	d, got := decodeSig(sig)
	h, err := d.hash()
	if d == "" || err != nil || got == nil {
		return ErrBadSig
	}
	methods := []string{method}
	if method == "HEAD" {
		methods = append(methods, "GET", "PUT", "POST")
	}
	ok := false
	for _, m := range methods {
		if hmac.Equal(got, mac(h, key, m, path, expires)) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSig
	}
	if !now.Before(expires) {
		return ErrExpired
	}
	return nil
}
