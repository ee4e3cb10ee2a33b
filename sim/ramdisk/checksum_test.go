package ramdisk

import "testing"

func TestExpectedChecksum(t *testing.T) {
	tests := []struct {
		info       map[string]any
		algo, want string
		err        bool
	}{
		{map[string]any{"checksum": "D41D8CD98F00B204E9800998ECF8427E"}, "md5", "d41d8cd98f00b204e9800998ecf8427e", false},
		{map[string]any{"checksum": "sha256:abcd"}, "sha256", "abcd", false},
		{map[string]any{"checksum": "x", "os_hash_algo": "sha512", "os_hash_value": "AB"}, "sha512", "ab", false},
		{map[string]any{"checksum": string(make([]byte, 40))}, "", "", true},
		{map[string]any{"checksum": "abc"}, "", "", true},
	}
	for _, tc := range tests {
		algo, v, err := expectedChecksum(tc.info)
		if (err != nil) != tc.err || algo != tc.algo || v != tc.want {
			t.Errorf("expectedChecksum(%v) = %q %q %v", tc.info, algo, v, err)
		}
	}
}
