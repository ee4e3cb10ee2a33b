package main

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestDBMigrateCommand: `lightsout db migrate` copies the state dir's
// SQLite database into PostgreSQL and reports matching counts; the
// password of the URL is never printed; a second copy needs --force.
func TestDBMigrateCommand(t *testing.T) {
	pg := testenv.Postgres(t)
	c := newCLI(t)
	c.must("node", "create", "n1", "--driver", "agent_ilo", "-i", "ilo_address=192.0.2.1", "-i", "ilo_username=u", "-i", "ilo_password=Cli-Pw-5")
	src := "sqlite://" + filepath.Join(c.state, "lightsout", "lightsout.db")
	out := c.must("db", "migrate", "--from", src, "--to", pg)
	if !strings.Contains(out, "counts and checksums match") || !strings.Contains(out, "nodes") {
		t.Fatalf("output:\n%s", out)
	}
	code, _, errOut := c.run("db", "migrate", "--from", src, "--to", pg)
	if code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("second copy: exit %d, %s", code, errOut)
	}
	c.must("db", "migrate", "--from", src, "--to", pg, "--force")
	u, _ := url.Parse(pg)
	pw, _ := u.User.Password()
	if strings.Contains(c.allOut.String(), pw) || strings.Contains(c.allOut.String(), "Cli-Pw-5") {
		t.Fatalf("a password was printed:\n%s", c.allOut.String())
	}
}
