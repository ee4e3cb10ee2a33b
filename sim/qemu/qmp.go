package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmpConn is one QMP connection kept for a VM's lifetime: commands are
// serialised, events are passed to onEvent (from the reader goroutine).
type qmpConn struct {
	conn    net.Conn
	mu      sync.Mutex // one command at a time
	replies chan qmpMsg
	done    chan struct{} // closed when the reader ends
}

type qmpMsg struct {
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	QMP json.RawMessage `json:"QMP"`
}

// dialQMP connects to path, negotiates capabilities and starts the reader.
func dialQMP(path string, onEvent func(event string, data json.RawMessage)) (*qmpConn, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	dec := json.NewDecoder(bufio.NewReader(c))
	var greet qmpMsg
	if err := dec.Decode(&greet); err != nil || greet.QMP == nil {
		c.Close()
		return nil, fmt.Errorf("QMP greeting: %v", err)
	}
	if _, err := c.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n")); err != nil {
		c.Close()
		return nil, fmt.Errorf("QMP capabilities: %w", err)
	}
	for {
		var m qmpMsg
		if err := dec.Decode(&m); err != nil {
			c.Close()
			return nil, fmt.Errorf("QMP capabilities: %w", err)
		}
		if m.Error != nil {
			c.Close()
			return nil, fmt.Errorf("QMP capabilities: %s", m.Error.Desc)
		}
		if m.Return != nil {
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	q := &qmpConn{conn: c, replies: make(chan qmpMsg, 1), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for {
			var m qmpMsg
			if err := dec.Decode(&m); err != nil {
				return
			}
			switch {
			case m.Event != "":
				if onEvent != nil {
					onEvent(m.Event, m.Data)
				}
			case m.Return != nil || m.Error != nil:
				select {
				case q.replies <- m:
				default: // nobody waits (a timed-out command)
				}
			}
		}
	}()
	return q, nil
}

// command runs one QMP command without arguments.
func (q *qmpConn) command(name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	select { // drop a stale reply
	case <-q.replies:
	default:
	}
	b, _ := json.Marshal(map[string]string{"execute": name})
	_ = q.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", name, err)
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case m := <-q.replies:
		if m.Error != nil {
			return fmt.Errorf("QMP %s: %s: %s", name, m.Error.Class, m.Error.Desc)
		}
		return nil
	case <-q.done:
		if name == "quit" {
			return nil // qemu closes the connection as it quits
		}
		return fmt.Errorf("QMP %s: %w", name, errors.New("connection closed"))
	case <-t.C:
		return fmt.Errorf("QMP %s: no answer within 5s", name)
	}
}

func (q *qmpConn) close() { q.conn.Close() }
