package module

import (
	"fmt"
	"regexp"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// uuidRE matches a UUID anywhere in a string (node UUIDs name published
// media: image-<uuid>, boot-<uuid>.iso, <uuid>-<file>).
var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// ForeignUUID returns the first UUID in s that is not own (compared
// case-insensitively), or "" when s names no other UUID.
func ForeignUUID(s, own string) string {
	for _, u := range uuidRE.FindAllString(s, -1) {
		if !strings.EqualFold(u, own) {
			return u
		}
	}
	return ""
}

// runNodeUUID is the run's node UUID ("" for a node-less run).
func runNodeUUID(r Run) string {
	if n := r.Node(); n != nil {
		return n.UUID()
	}
	return ""
}

// Forbidden builds the error refusing an action on another node (or on
// any node, for a node-less run).
func Forbidden(r Run, op, ref string) *Error {
	n := r.Node()
	if n == nil {
		return Errorf(CodeForbidden, op, "node %q: this run has no node, and a script may act only on its run's node (run it with --node)", ref)
	}
	return Errorf(CodeForbidden, op, "node %q is not this run's node %s: a script may act only on its run's node", ref, n.Name())
}

// RunNode resolves a node reference given by a script (a UUID or name) to
// the run's node UUID. "" means the run's node. Any other node, and any
// node at all in a node-less run, is refused with CodeForbidden.
func RunNode(r Run, op, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	n := r.Node()
	switch {
	case n == nil:
		if ref == "" {
			return "", Errorf(CodeForbidden, op, "this run has no node, and a script may act only on its run's node (run it with --node)")
		}
		return "", Forbidden(r, op, ref)
	case ref == "" || strings.EqualFold(ref, n.UUID()) || ref == n.Name():
		return n.UUID(), nil
	}
	return "", Forbidden(r, op, ref)
}

// NodeArg reads argument i as a node reference: nil (the run's node), a
// UUID or name string, or a node table ({uuid=..., name=...}). It returns
// the run's node UUID, or raises forbidden for another node (or any node
// in a node-less run) and invalid_argument for other types.
func NodeArg(L *lua.LState, r Run, i int, op string) string {
	var ref string
	switch v := L.Get(i).(type) {
	case *lua.LNilType:
	case lua.LString:
		ref = string(v)
	case *lua.LTable:
		ref = lua.LVAsString(v.RawGetString("uuid"))
		if ref == "" {
			ref = lua.LVAsString(v.RawGetString("name"))
		}
		if ref == "" {
			L.Error(ErrorValue(L, CodeInvalid, op, fmt.Sprintf("argument #%d (node): the table has no uuid or name", i)), 1)
		}
	default:
		L.Error(ErrorValue(L, CodeInvalid, op, fmt.Sprintf("argument #%d (node) must be nil (the run's node), a node table, UUID or name, got %s", i, v.Type())), 1)
	}
	uuid, err := RunNode(r, op, ref)
	if err != nil {
		Raise(L, op, err)
	}
	return uuid
}

// CheckName refuses an object or file name that carries another node's
// UUID (published media are named for their node), so a run can neither
// read nor replace another node's media.
func CheckName(r Run, op, name string) error {
	if u := ForeignUUID(name, runNodeUUID(r)); u != "" {
		return Errorf(CodeForbidden, op, "%q names node %s, not this run's node: a script may act only on its run's node's media", name, u)
	}
	return nil
}
