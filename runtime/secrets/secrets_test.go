package secrets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsSecretKey(t *testing.T) {
	tests := map[string]bool{
		"ilo_password": true, "ILO_PASSWORD": true, "ilo_change_password": true, "snmp_auth_prot_password": true,
		"temp_url_key": true, "agent_token": true, "passphrase": true, "configdrive": true,
		"ilo_address": false, "clean_priority_reset_secure_boot_keys_to_default": false,
		"clean_priority_reset_ilo_credential": false, "ssh_public_key": false, "swift_temp_url_key": true, "ilo_username": false, "client_port": false, "ilo_deploy_iso": false,
	}
	for k, want := range tests {
		if got := IsSecretKey(k); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestRedactorByValue(t *testing.T) {
	r := NewRedactor()
	r.Add("hunter22", "hunter22-long", "abc") // "abc" is below MinLen: not redacted by value
	r.AddFromMap(map[string]any{"ilo_password": "Pw-1234", "ilo_address": "10.0.0.1"})
	tests := []struct{ in, want string }{
		{"login hunter22-long failed", "login ****** failed"},
		{"x hunter22 y", "x ****** y"},
		{"Pw-1234@10.0.0.1", "******@10.0.0.1"},
		{"abc", "abc"},
		{"hunter22hunter22-long.hunter2", "************.hunter2"},
		{"hunter22-lon", "******-lon"},
		{"Pw-1234", "******"},
		{"Pw-123", "Pw-123"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	v := r.Value(map[string]any{"msg": "pw Pw-1234", "nested": []any{"hunter22"}, "token": "short"}).(map[string]any)
	if v["msg"] != "pw ******" || v["nested"].([]any)[0] != "******" || v["token"] != Mask {
		t.Fatalf("Value = %v", v)
	}
}

// TestRedactorManyValues: the 10,000 passwords of a fleet, registered
// one at a time as runs start, are each masked, overlapping ones
// included, and a line holding none is returned unchanged.
func TestRedactorManyValues(t *testing.T) {
	r := NewRedactor()
	for i := range 10000 {
		r.Add(fmt.Sprintf("pw-%d-x", i))
		r.Add(fmt.Sprintf("pw-%d-x", i)) // again: no duplicate
	}
	for _, i := range []int{0, 1, 10, 999, 9999} {
		in := fmt.Sprintf("login pw-%d-x failed; pw-%d-xpw-%d-x", i, i, i)
		if got := r.String(in); got != "login ****** failed; ************" {
			t.Errorf("String(%q) = %q", in, got)
		}
	}
	if got := r.String("pw-10000-x pw-1-"); got != "pw-10000-x pw-1-" {
		t.Errorf("unknown values changed: %q", got)
	}
	if n := len(r.byPrefix["pw-1"]); n != 1111 {
		t.Errorf("%d values under prefix pw-1, want 1111 (each once)", n)
	}
}

// BenchmarkRedactorFleet: registering a fleet's passwords one at a time,
// as runs start, each followed by a redacted log line (was O(N²): a
// replacer rebuilt per value, 95 s for 10,000 on the shared machine).
func BenchmarkRedactorFleet(b *testing.B) {
	for b.Loop() {
		r := NewRedactor()
		for i := range 10000 {
			r.Add(fmt.Sprintf("pw-%08x-%d", uint32(i)*2654435761, i))
			_ = r.String("run 42: node rack01-node00042 power on; ilo 10.0.0.42 answered in 1.2 s")
		}
	}
}

func TestCipherRoundTripAndContext(t *testing.T) {
	key, err := LoadKey(filepath.Join(t.TempDir(), "sub", "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewCipher(key)
	enc, err := c.Encrypt("s3cret", "node/ilo_password")
	if err != nil || !IsEncrypted(enc) || strings.Contains(enc, "s3cret") {
		t.Fatalf("enc %q %v", enc, err)
	}
	if pt, err := c.Decrypt(enc, "node/ilo_password"); err != nil || pt != "s3cret" {
		t.Fatalf("dec %q %v", pt, err)
	}
	if _, err := c.Decrypt(enc, "other/ilo_password"); err == nil {
		t.Fatal("decrypt with another context succeeded")
	}
	other, _ := NewCipher(make([]byte, 32))
	if _, err := other.Decrypt(enc, "node/ilo_password"); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestLoadKeyFileModeAndEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret.key")
	k1, err := LoadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	k2, _ := LoadKey(p)
	if string(k1) != string(k2) {
		t.Fatal("key changed between loads")
	}
	t.Setenv(EnvKey, "a passphrase")
	k3, _ := LoadKey(p)
	if len(k3) != 32 || string(k3) == string(k1) {
		t.Fatal("env key not used")
	}
}
