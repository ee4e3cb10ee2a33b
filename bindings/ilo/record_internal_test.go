package ilo

import "testing"

func TestStripQueryHidesTempURLSignature(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:8080/image-x?temp_url_sig=abc&temp_url_expires=1": "http://127.0.0.1:8080/image-x?…",
		"http://127.0.0.1/ipa.iso": "http://127.0.0.1/ipa.iso",
	}
	for in, want := range tests {
		if got := stripQuery(in); got != want {
			t.Errorf("stripQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
