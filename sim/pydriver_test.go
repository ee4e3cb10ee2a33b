package sim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

const python = "/usr/bin/python3"

// requireProliantutils skips (fails under make test) unless Debian's
// python3-proliantutils imports.
func requireProliantutils(t testing.TB) {
	t.Helper()
	testenv.RequireTools(t, python)
	out, err := exec.Command(python, "-c", "import proliantutils.ilo.client, sushy").CombinedOutput()
	if err != nil {
		if testenv.Integration() {
			t.Fatalf("python3-proliantutils does not import (run testdata/tools/deps.sh): %v\n%s", err, out)
		}
		t.Skipf("python3-proliantutils not importable: %v", err)
	}
}

// pyEnv is the environment for proliantutils: without CA bundle overrides
// (they break sushy's verify setting, ilo-wire-protocols.md §5).
func pyEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REQUESTS_CA_BUNDLE=") || strings.HasPrefix(kv, "CURL_CA_BUNDLE=") ||
			strings.HasPrefix(kv, "HTTPS_PROXY=") || strings.HasPrefix(kv, "https_proxy=") ||
			strings.HasPrefix(kv, "HTTP_PROXY=") || strings.HasPrefix(kv, "http_proxy=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost", "PYTHONDONTWRITEBYTECODE=1")
}

// pyResult is one answer of the driver.
type pyResult struct {
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

func (r pyResult) String() string {
	if r.OK {
		return "ok " + string(r.Result)
	}
	return r.Error + ": " + r.Message
}

// str decodes a string result.
func (r pyResult) str(t *testing.T) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.Result, &s); err != nil {
		t.Fatalf("result %s is not a string: %v", r.Result, err)
	}
	return s
}

// pyDriver is one python3 process holding one proliantutils IloClient.
type pyDriver struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	model string
	err   pyResult
}

func startDriver(t *testing.T, s *sim.Sim, srv *sim.Server) *pyDriver {
	t.Helper()
	cfg, _ := json.Marshal(map[string]string{"host": srv.Addr(), "user": srv.Username(), "password": srv.Password(), "cacert": s.CAFile()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, python, "testdata/proliantutils_driver.py", string(cfg))
	cmd.Env = pyEnv()
	cmd.Stderr = &testWriter{t: t}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &pyDriver{t: t, cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
	d.out.Buffer(make([]byte, 1<<20), 1<<20)
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
		cancel()
	})
	first := d.read()
	if !first.OK {
		d.err = first
		return d
	}
	d.model = first.str(t)
	return d
}

func (d *pyDriver) read() pyResult {
	d.t.Helper()
	if !d.out.Scan() {
		d.t.Fatalf("proliantutils driver exited: %v", d.out.Err())
	}
	var r pyResult
	if err := json.Unmarshal(d.out.Bytes(), &r); err != nil {
		d.t.Fatalf("bad driver line %q: %v", d.out.Text(), err)
	}
	return r
}

// call runs one IloClient method.
func (d *pyDriver) call(op string, args ...any) pyResult {
	d.t.Helper()
	if args == nil {
		args = []any{}
	}
	b, _ := json.Marshal(map[string]any{"op": op, "args": args})
	if _, err := fmt.Fprintf(d.in, "%s\n", b); err != nil {
		d.t.Fatalf("write to driver: %v", err)
	}
	return d.read()
}

// must runs op and fails the test on an exception.
func (d *pyDriver) must(op string, args ...any) pyResult {
	d.t.Helper()
	r := d.call(op, args...)
	if !r.OK {
		d.t.Fatalf("%s%v: %s", op, args, r)
	}
	return r
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("python: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// imageServer serves a small ISO and floppy image on a loopback URL.
func imageServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/images/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", "4096")
		if r.Method == http.MethodGet {
			_, _ = w.Write(make([]byte, 4096))
		}
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}
