package swift

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/swift/swiftaio"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// realSwift starts one Swift all-in-one for the package, on first use.
var realSwift struct {
	once sync.Once
	aio  *swiftaio.AIO
	err  error
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if realSwift.aio != nil {
		if err := realSwift.aio.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if realSwift.dir != "" {
		os.RemoveAll(realSwift.dir)
	}
	os.Exit(code)
}

// needSwift returns the running all-in-one, skipping (or, under make test,
// failing) when the Swift packages are missing.
func needSwift(t testing.TB) *swiftaio.AIO {
	t.Helper()
	testenv.RequireTools(t, swiftaio.Tools...)
	realSwift.once.Do(func() {
		realSwift.dir, realSwift.err = os.MkdirTemp("", "lightsout-swift-aio-")
		if realSwift.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		realSwift.aio, realSwift.err = swiftaio.Start(ctx, realSwift.dir)
	})
	if realSwift.err != nil {
		t.Fatalf("starting Swift all-in-one: %v", realSwift.err)
	}
	return realSwift.aio
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
