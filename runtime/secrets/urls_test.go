package secrets

import (
	"reflect"
	"strings"
	"testing"
)

func TestMaskURLs(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"userinfo", "GET http://admin:Pw-1234@10.0.0.5/img.qcow2 failed", "GET http://admin:******@10.0.0.5/img.qcow2 failed"},
		{"userinfo with raw at", "https://u:p@ss@host:8080/x", "https://u:******@host:8080/x"},
		{"token as user", "https://ghp_abcdef@github.com/o/r.git", "https://******@github.com/o/r.git"},
		{"empty password kept", "ftp://anonymous:@host/", "ftp://anonymous:@host/"},
		{"no userinfo", "http://10.0.0.5/img?format=raw", "http://10.0.0.5/img?format=raw"},
		{"at after path", "see http://h/p and mail bob@example.com", "see http://h/p and mail bob@example.com"},
		{"swift temp url", "http://swift:8080/v1/AUTH_x/c/o?temp_url_sig=0123abcd&temp_url_expires=1700000000",
			"http://swift:8080/v1/AUTH_x/c/o?temp_url_sig=******&temp_url_expires=1700000000"},
		{"sig not first", "http://h/o?temp_url_expires=1&temp_url_sig=dead&filename=x.iso", "http://h/o?temp_url_expires=1&temp_url_sig=******&filename=x.iso"},
		{"agent token", "http://10.0.0.1:9999/v1/commands?agent_token=tok-1234", "http://10.0.0.1:9999/v1/commands?agent_token=******"},
		{"s3 presigned", "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=abcd", "https://b.s3.amazonaws.com/k?X-Amz-Credential=******&X-Amz-Signature=******"},
		{"in quoted json", `{"url":"http://u:secretpw@h/x?temp_url_sig=ab"}`, `{"url":"http://u:******@h/x?temp_url_sig=******"}`},
		{"both", "http://u:p@h/x?sig=1", "http://u:******@h/x?sig=******"},
		{"harmless query", "http://h/x?a=1&b=2", "http://h/x?a=1&b=2"},
		{"idempotent", "http://u:******@h/x?temp_url_sig=******", "http://u:******@h/x?temp_url_sig=******"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskURLs(tt.in); got != tt.want {
				t.Errorf("MaskURLs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactorMasksURLsAndNestedValues(t *testing.T) {
	const pw = "S3ntinel-pw"
	r := NewRedactor()
	r.Add(pw)
	in := map[string]any{
		"image_source": "http://user:other@h/img",
		"x":            "copy " + pw,
		pw:             "key is the secret",
		"deep":         map[string]any{"list": []any{"a", "http://h/o?temp_url_sig=abc", map[string]any{"y": reverse(reverse(pw))}}},
		"ilo_password": "short",
		"n":            float64(3),
	}
	got := r.Value(in)
	want := map[string]any{
		"image_source": "http://user:******@h/img",
		"x":            "copy ******",
		"******":       "key is the secret",
		"deep":         map[string]any{"list": []any{"a", "http://h/o?temp_url_sig=******", map[string]any{"y": "******"}}},
		"ilo_password": Mask,
		"n":            float64(3),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Value =\n%v\nwant\n%v", got, want)
	}
	if s := r.String("error: " + pw); strings.Contains(s, pw) {
		t.Fatalf("String leaked: %q", s)
	}
	// A nil Redactor still masks URL credentials.
	var nilR *Redactor
	if s := nilR.String("http://a:bcdef@h/"); s != "http://a:******@h/" {
		t.Fatalf("nil String = %q", s)
	}
}

func TestRedactorHolds(t *testing.T) {
	r := NewRedactor()
	r.Add("S3ntinel")
	tests := []struct {
		name string
		v    any
		want bool
	}{
		{"plain", "http://h/img.qcow2", false},
		{"secret inside", "xS3ntinelx", true},
		{"userinfo", "http://u:p@h/", true},
		{"signature", "http://h/o?temp_url_sig=1", true},
		{"nested value", map[string]any{"a": []any{1.0, "S3ntinel"}}, true},
		{"nested key", map[string]any{"S3ntinel": 1.0}, true},
		{"number", 3.0, false},
	}
	for _, tt := range tests {
		if got := r.Holds(tt.v); got != tt.want {
			t.Errorf("%s: Holds(%v) = %v, want %v", tt.name, tt.v, got, tt.want)
		}
	}
}

func TestMaskMapMasksURLs(t *testing.T) {
	got := MaskMap(map[string]any{"ilo_deploy_iso": "http://u:pw12@h/d.iso", "ilo_password": "x", "sub": map[string]any{"l": []any{"http://h/?sig=z"}}})
	want := map[string]any{"ilo_deploy_iso": "http://u:******@h/d.iso", "ilo_password": Mask, "sub": map[string]any{"l": []any{"http://h/?sig=******"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MaskMap = %v, want %v", got, want)
	}
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
