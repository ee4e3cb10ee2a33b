package redfish

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

type eventLog struct {
	mu sync.Mutex
	ev []SessionEvent
}

func (l *eventLog) add(e SessionEvent) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }
func (l *eventLog) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.ev {
		out = append(out, e.Name+"/"+e.Reason)
	}
	return out
}

// 20 calls make one login; a session killed on the iLO side is recovered
// with one re-login, reported; Close deletes the session.
func TestOneSessionPerClient(t *testing.T) {
	ctx := context.Background()
	c, srv := replayClient(t, treeGen11)
	var log eventLog
	c.OnSession = log.add
	for i := 0; i < 20; i++ {
		if i == 12 {
			srv.KillSessions()
		}
		if _, err := c.GetHostPowerStatus(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := srv.Logins(); got != 2 {
		t.Fatalf("logins = %d, want 2 (first use + one re-login after the kill)", got)
	}
	want := []string{"login/first use", "relogin/HTTP 401"}
	if got := log.names(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("session events %v, want %v", got, want)
	}
	c.Close(ctx)
	if srv.Sessions() != 0 || srv.Logouts() != 1 {
		t.Fatalf("after Close: %d sessions, %d logouts; want 0 and 1", srv.Sessions(), srv.Logouts())
	}
	if got := log.names(); len(got) != 3 || got[2] != "logout/close" {
		t.Fatalf("session events %v, want a logout/close last", got)
	}
}

// Clients sharing a Sessions set (the runs of one process on one iLO)
// log in once between them, concurrently too; the set deletes the
// session after Idle without use, and at Close.
func TestSharedSessionsAcrossClients(t *testing.T) {
	ctx := context.Background()
	c1, srv := replayClient(t, treeGen12)
	set := NewSessions()
	var setLog eventLog
	set.OnEvent = setLog.add
	set.Idle = time.Hour
	o, err := iloapi.ParseDriverInfo(srv.DriverInfo())
	if err != nil {
		t.Fatal(err)
	}
	clients := []*Client{c1}
	for i := 0; i < 3; i++ {
		tr, err := iloapi.NewTransport(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, New(tr))
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		c.UseSessions(set)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := c.GetHostPowerStatus(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if srv.Logins() != 1 || srv.Sessions() != 1 {
		t.Fatalf("4 clients x 5 calls: %d logins, %d sessions; want 1 and 1", srv.Logins(), srv.Sessions())
	}
	for _, c := range clients {
		c.Close(ctx) // a shared session outlives its clients
	}
	if srv.Sessions() != 1 {
		t.Fatalf("client Close deleted the shared session")
	}
	set.Close(ctx)
	if srv.Sessions() != 0 || len(setLog.names()) != 1 || setLog.names()[0] != "logout/shutdown" {
		t.Fatalf("after set Close: %d sessions, events %v", srv.Sessions(), setLog.names())
	}

	// Idle expiry.
	set = NewSessions()
	set.Idle = 20 * time.Millisecond
	expired := make(chan SessionEvent, 1)
	set.OnEvent = func(e SessionEvent) { expired <- e }
	c := clients[1]
	c.UseSessions(set)
	if _, err := c.GetHostPowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-expired:
		if e.Name != "logout" || e.Reason != "idle" {
			t.Fatalf("idle event %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle session was not deleted")
	}
	if srv.Sessions() != 0 {
		t.Fatalf("%d sessions after idle expiry", srv.Sessions())
	}
	if n := set.entries(); n != 0 {
		t.Fatalf("the set keeps %d entries after the idle logout, want 0 (one per iLO ever used would grow without bound)", n)
	}
	// The iLO is used again: a new entry, a new login.
	if _, err := c.GetHostPowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if n := set.entries(); n != 1 || srv.Sessions() != 1 {
		t.Fatalf("after reuse: %d entries, %d sessions; want 1 and 1", n, srv.Sessions())
	}
	set.Close(ctx)
}

// With MaxIdle unused sessions kept already, a session whose last
// operation ends is deleted at once (not after Idle); one in use again
// frees its place.
func TestSessionsMaxIdle(t *testing.T) {
	ctx := context.Background()
	c1, srv1 := replayClient(t, treeGen12)
	c2, srv2 := replayClient(t, treeGen11)
	set := NewSessions()
	set.Idle = time.Hour
	set.MaxIdle = 1
	events := make(chan SessionEvent, 4)
	set.OnEvent = func(e SessionEvent) { events <- e }
	c1.UseSessions(set)
	c2.UseSessions(set)
	if _, err := c1.GetHostPowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if set.Held() != 1 || srv1.Sessions() != 1 {
		t.Fatalf("after the first iLO: %d held, %d sessions on it; want 1 and 1", set.Held(), srv1.Sessions())
	}
	if _, err := c2.GetHostPowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Name != "logout" || e.Reason != "idle" {
			t.Fatalf("event %+v, want the second iLO's session logged out as idle", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session beyond MaxIdle was not deleted")
	}
	if srv2.Sessions() != 0 || srv1.Sessions() != 1 || set.Held() != 1 || set.entries() != 1 {
		t.Fatalf("second iLO %d sessions, first %d, held %d, entries %d; want 0, 1, 1, 1", srv2.Sessions(), srv1.Sessions(), set.Held(), set.entries())
	}
	set.Close(ctx)
	if set.Held() != 0 || srv1.Sessions() != 0 {
		t.Fatalf("after Close: held %d, first iLO %d sessions", set.Held(), srv1.Sessions())
	}
}
