// Package swiftaio starts and stops a real single-replica OpenStack Swift
// (tempauth + tempurl, memcached) on 127.0.0.1 for tests, with
// testdata/tools/swift-aio.sh on free ports in a temporary directory.
package swiftaio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/localport"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// Tools are the programs the all-in-one needs.
var Tools = []string{"swift-proxy-server", "swift-account-server", "swift-container-server",
	"swift-object-server", "swift", "memcached", "curl"}

// AIO is a running all-in-one.
type AIO struct {
	AuthURL    string // http://127.0.0.1:PORT/auth/v1.0
	User       string // test:tester (v1 "account:user")
	Key        string // testing
	StorageURL string // http://127.0.0.1:PORT/v1/AUTH_test
	Dir        string
	script     string
	env        []string
}

// Script returns the path of testdata/tools/swift-aio.sh, found by walking
// up from the working directory to go.mod.
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "testdata", "tools", "swift-aio.sh")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("swift-aio.sh: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// freePorts picks n distinct ports below the ephemeral range
// (localport.Free): ports from ":0" were handed to other listeners before
// the all-in-one's servers bound them ("Could not bind").
func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		p, err := localport.Free()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// Start starts an all-in-one under dir (created if needed; must be on a
// filesystem with user xattrs, e.g. ext4 or tmpfs). It retries on a port
// race. The caller must Stop it.
func Start(ctx context.Context, dir string) (*AIO, error) {
	script, err := Script()
	if err != nil {
		return nil, err
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(5)
		if err != nil {
			return nil, err
		}
		a := &AIO{Dir: dir, script: script, User: "test:tester", Key: "testing"}
		a.env = append(os.Environ(),
			"SWIFT_AIO_DIR="+dir,
			"SWIFT_PORT="+strconv.Itoa(ports[0]),
			"SWIFT_OBJECT_PORT="+strconv.Itoa(ports[1]),
			"SWIFT_CONTAINER_PORT="+strconv.Itoa(ports[2]),
			"SWIFT_ACCOUNT_PORT="+strconv.Itoa(ports[3]),
			"SWIFT_MEMCACHE_PORT="+strconv.Itoa(ports[4]),
			"SWIFT_READY_TIMEOUT=90",
		)
		cmd := exec.CommandContext(ctx, "bash", script, "start")
		cmd.Env = a.env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			last = fmt.Errorf("swift-aio.sh start: %v\n%s", err, out.String())
			a.Stop()
			if strings.Contains(out.String(), "already in use") || strings.Contains(out.String(), "Could not bind") {
				continue
			}
			return nil, last
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
			if !ok {
				continue
			}
			switch k {
			case "ST_AUTH":
				a.AuthURL = v
			case "SWIFT_STORAGE_URL":
				a.StorageURL = v
			}
		}
		if a.AuthURL == "" {
			a.Stop()
			return nil, fmt.Errorf("swift-aio.sh start printed no ST_AUTH:\n%s", out.String())
		}
		return a, nil
	}
	return nil, last
}

// Stop stops the servers this AIO started (only its recorded PIDs).
func (a *AIO) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", a.script, "stop")
	cmd.Env = a.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("swift-aio.sh stop: %v: %s", err, out)
	}
	return nil
}

// Swift runs the python3-swiftclient CLI against this AIO with args.
func (a *AIO) Swift(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"-A", a.AuthURL, "-U", a.User, "-K", a.Key}, args...)
	cmd := exec.CommandContext(ctx, "swift", full...)
	cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore")
	return cmd.CombinedOutput()
}

// Shared is one all-in-one per test binary, started on first use: declare
// one in the test package and call Stop from TestMain.
type Shared struct {
	once sync.Once
	aio  *AIO
	err  error
	dir  string
}

// Get returns the running all-in-one, starting it on the first call. It
// skips (or, under `make test`, fails) t when the Swift packages are missing.
func (s *Shared) Get(t testing.TB) *AIO {
	t.Helper()
	testenv.RequireTools(t, Tools...)
	s.once.Do(func() {
		s.dir, s.err = os.MkdirTemp("", "lightsout-swift-aio-")
		if s.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.aio, s.err = Start(ctx, s.dir)
	})
	if s.err != nil {
		t.Fatalf("starting Swift all-in-one: %v", s.err)
	}
	return s.aio
}

// Stop stops the all-in-one (if it was started) and removes its directory.
func (s *Shared) Stop() error {
	var err error
	if s.aio != nil {
		err = s.aio.Stop()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return err
}
