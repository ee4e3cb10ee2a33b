package tempurl

import (
	"errors"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Vectors produced by python3-swiftclient 4.1:
// swift tempurl --absolute --digest D METHOD EXPIRES PATH KEY
var vectors = []struct {
	d                 Digest
	method, path, key string
	expires           int64
	query             string
}{
	{SHA1, "GET", "/v1/AUTH_test/c/o", "secretkey", 1700000000,
		"temp_url_sig=62eb838bb7c2d4d9cc66646881e475f40de444de&temp_url_expires=1700000000"},
	{SHA256, "GET", "/v1/AUTH_test/c/o", "secretkey", 1700000000,
		"temp_url_sig=d4c07e0a934a37a1f74118f6981f99cf720edc1650e81d717dfd96b9fb275784&temp_url_expires=1700000000"},
	{SHA512, "GET", "/v1/AUTH_test/c/o", "secretkey", 1700000000,
		"temp_url_sig=sha512:mYkOgTJQGH0mOHJmsRJT4zrxuR084bO4gVpSeAWJLQWrsV5ALk3V3RVfS03SS7GK5VZ0SY6W3fOap9W2OM1b7g&temp_url_expires=1700000000"},
	{SHA256, "PUT", "/v1/AUTH_test/ironic_ilo_container/image-1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "k3y with space", 1800000000,
		"temp_url_sig=34345ed0860c981981c2c7fd60b35e069255a9b13123a25eb4a4517bce848b31&temp_url_expires=1800000000"},
}

func TestQueryMatchesSwiftclient(t *testing.T) {
	for _, v := range vectors {
		t.Run(string(v.d)+v.method, func(t *testing.T) {
			got, err := Query(v.d, v.key, v.method, v.path, time.Unix(v.expires, 0), "")
			if err != nil {
				t.Fatal(err)
			}
			if got != v.query {
				t.Fatalf("Query = %s\nwant    %s", got, v.query)
			}
			q, _ := url.ParseQuery(got)
			if err := Verify(v.key, v.method, v.path, q, time.Unix(v.expires-1, 0)); err != nil {
				t.Fatalf("Verify own signature: %v", err)
			}
		})
	}
}

// TestLiveSwiftclient cross-checks against the installed swift CLI when present.
func TestLiveSwiftclient(t *testing.T) {
	if _, err := exec.LookPath("swift"); err != nil {
		t.Skip("python3-swiftclient not installed")
	}
	for _, d := range []Digest{SHA1, SHA256, SHA512} {
		out, err := exec.Command("swift", "tempurl", "--absolute", "--digest", string(d), "GET", "2000000000", "/v1/AUTH_x/cont/obj.iso", "live key").Output()
		if err != nil {
			t.Fatalf("swift tempurl: %v", err)
		}
		want := strings.TrimSpace(string(out))
		q, _ := Query(d, "live key", "GET", "/v1/AUTH_x/cont/obj.iso", time.Unix(2000000000, 0), "")
		if got := "/v1/AUTH_x/cont/obj.iso?" + q; got != want {
			t.Errorf("%s: got %s want %s", d, got, want)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1000, 0)
	good, _ := Query(SHA256, "k", "GET", "/x", now.Add(time.Minute), "x.iso")
	gq, _ := url.ParseQuery(good)
	with := func(k, v string) url.Values {
		q, _ := url.ParseQuery(good)
		q.Set(k, v)
		return q
	}
	without := func(k string) url.Values {
		q, _ := url.ParseQuery(good)
		q.Del(k)
		return q
	}
	tests := []struct {
		name   string
		key    string
		method string
		path   string
		q      url.Values
		now    time.Time
		want   error
	}{
		{"ok", "k", "GET", "/x", gq, now, nil},
		{"head with GET sig", "k", "HEAD", "/x", gq, now, nil},
		{"PUT with GET sig", "k", "PUT", "/x", gq, now, ErrBadSig},
		{"wrong key", "other", "GET", "/x", gq, now, ErrBadSig},
		{"other path", "k", "GET", "/y", gq, now, ErrBadSig},
		{"expired", "k", "GET", "/x", gq, now.Add(time.Minute), ErrExpired},
		{"no sig", "k", "GET", "/x", without("temp_url_sig"), now, ErrMissing},
		{"no expires", "k", "GET", "/x", without("temp_url_expires"), now, ErrMissing},
		{"bad expires", "k", "GET", "/x", with("temp_url_expires", "soon"), now, ErrBadExp},
		{"moved expires", "k", "GET", "/x", with("temp_url_expires", "999999"), now, ErrBadSig},
		{"short sig", "k", "GET", "/x", with("temp_url_sig", "abcd"), now, ErrBadSig},
		{"non-hex sig", "k", "GET", "/x", with("temp_url_sig", strings.Repeat("z", 64)), now, ErrBadSig},
		{"bad prefix", "k", "GET", "/x", with("temp_url_sig", "md5:AAAA"), now, ErrBadSig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.key, tt.method, tt.path, tt.q, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	for in, want := range map[string]Digest{"": SHA256, "SHA1": SHA1, "sha512": SHA512, " sha256 ": SHA256} {
		if got, err := ParseDigest(in); err != nil || got != want {
			t.Errorf("ParseDigest(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDigest("md5"); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("ParseDigest(md5) error = %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("GET", "/x", "temp_url_sig=abc&temp_url_expires=1")
	f.Add("HEAD", "/v1/a/c/o", "temp_url_sig=sha512:AAAA&temp_url_expires=99999999999")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		// Only a real signature may pass.
		if err := Verify("fuzz-key", method, path, q, time.Unix(0, 0)); err == nil {
			t.Fatalf("random query accepted: %q", query)
		}
	})
}
