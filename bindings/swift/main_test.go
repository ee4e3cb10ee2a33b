package swift

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/swift/swiftaio"
)

// realSwift is the package's Swift all-in-one, started on first use.
var realSwift swiftaio.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := realSwift.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// needSwift returns the running all-in-one, skipping (or, under make test,
// failing) when the Swift packages are missing.
func needSwift(t testing.TB) *swiftaio.AIO {
	t.Helper()
	return realSwift.Get(t)
}

// testClient returns a client for the all-in-one with cfg tweaks applied.
func testClient(t testing.TB, tweak func(*Config)) *Client {
	t.Helper()
	a := needSwift(t)
	cfg := Config{AuthURL: a.AuthURL, AuthVersion: 1, Username: a.User, Password: a.Key,
		Container: "lightsout_test", Expiry: 900 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
