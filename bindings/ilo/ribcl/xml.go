package ribcl

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Element is a parsed XML element. Attribute names keep their case;
// Attr looks them up case-insensitively (iLO mixes VALUE and value).
type Element struct {
	Name     string
	Attrs    []xml.Attr
	Children []*Element
	Text     string
}

// Attr returns the value of attribute name (case-insensitive).
func (e *Element) Attr(name string) (string, bool) {
	if e == nil {
		return "", false
	}
	for _, a := range e.Attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value, true
		}
	}
	return "", false
}

// Value returns the VALUE attribute (any case), or "".
func (e *Element) Value() string {
	v, _ := e.Attr("VALUE")
	return v
}

// Child returns the first child named name, or nil.
func (e *Element) Child(name string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// All returns every child named name.
func (e *Element) All(name string) []*Element {
	if e == nil {
		return nil
	}
	var out []*Element
	for _, c := range e.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// Path follows the first child with each name in turn; nil when missing.
func (e *Element) Path(names ...string) *Element {
	for _, n := range names {
		e = e.Child(n)
		if e == nil {
			return nil
		}
	}
	return e
}

// Response is a parsed RIBCL answer: the data document (the last RIBCL
// document carrying anything but RESPONSE), and the last status message
// that was not "No error" (e.g. "Server being reset.").
type Response struct {
	Data    *Element
	Message string
}

// StatusError is a non-zero RIBCL RESPONSE STATUS.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("RIBCL status 0x%04X: %s", e.Status, e.Message)
}

// FormatError says the body is not a RIBCL answer at all.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "not a RIBCL response: " + e.Reason }

var xmlDecl = regexp.MustCompile(`<\?xml`)

// Parse reads a (multi-document) RIBCL response body as proliantutils
// does: split at every "<?xml", parse each part on its own, stop at the
// first non-zero STATUS (returned as *StatusError), and keep the last
// document whose RIBCL element has a child other than RESPONSE.
func Parse(body []byte) (*Response, error) {
	idx := xmlDecl.FindAllIndex(body, -1)
	var parts [][]byte
	prev := 0
	for _, ix := range idx {
		parts = append(parts, body[prev:ix[0]])
		prev = ix[0]
	}
	parts = append(parts, body[prev:])
	out := &Response{}
	docs := 0
	for _, p := range parts {
		p = bytes.TrimSpace(p)
		if len(p) == 0 {
			continue
		}
		root, err := parseDoc(p)
		if err != nil {
			return nil, &FormatError{Reason: err.Error()}
		}
		if root == nil {
			continue // a declaration alone
		}
		if root.Name != "RIBCL" {
			return nil, &FormatError{Reason: fmt.Sprintf("root element %q, want RIBCL", root.Name)}
		}
		docs++
		for _, c := range root.Children {
			if c.Name != "RESPONSE" {
				out.Data = root
				break
			}
			st, _ := c.Attr("STATUS")
			msg, _ := c.Attr("MESSAGE")
			code, err := parseStatus(st)
			if err != nil {
				return nil, &FormatError{Reason: err.Error()}
			}
			if code != 0 {
				return nil, &StatusError{Status: code, Message: msg}
			}
			if msg != "No error" {
				out.Message = msg
			}
		}
	}
	if docs == 0 {
		return nil, &FormatError{Reason: "no RIBCL document in the body"}
	}
	return out, nil
}

func parseStatus(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("RESPONSE without STATUS")
	}
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(t, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad STATUS %q", s)
	}
	return int(v), nil
}

// maxDepth bounds element nesting so hostile input cannot blow the stack.
const maxDepth = 64

func parseDoc(b []byte) (*Element, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	d.Strict = true
	var stack []*Element
	var root *Element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("elements nested deeper than %d", maxDepth)
			}
			e := &Element{Name: t.Name.Local, Attrs: append([]xml.Attr(nil), t.Attr...)}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("several root elements")
				}
				root = e
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("unexpected end element %s", t.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if s := strings.TrimSpace(string(t)); s != "" {
					e := stack[len(stack)-1]
					e.Text += s
				}
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("text outside the root element")
			}
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("unclosed element %s", stack[len(stack)-1].Name)
	}
	return root, nil
}

// --- requests ---------------------------------------------------------------

// attr is one request attribute.
type attr struct{ k, v string }

// elem renders <NAME a="v" ... /> or <NAME ...>children</NAME> with
// escaped attribute values, ElementTree style.
func elem(name string, attrs []attr, children ...string) string {
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(name)
	for _, a := range attrs {
		b.WriteString(" ")
		b.WriteString(a.k)
		b.WriteString(`="`)
		_ = xml.EscapeText(&b, []byte(a.v))
		b.WriteString(`"`)
	}
	if len(children) == 0 {
		b.WriteString(" />")
		return b.String()
	}
	b.WriteString(">")
	for _, c := range children {
		b.WriteString(c)
	}
	b.WriteString("</")
	b.WriteString(name)
	b.WriteString(">")
	return b.String()
}

// envelope wraps one command in RIBCL/LOGIN/SECTION.
func envelope(user, password, section, mode, command string) []byte {
	s := elem("RIBCL", []attr{{"VERSION", "2.0"}},
		elem("LOGIN", []attr{{"USER_LOGIN", user}, {"PASSWORD", password}},
			elem(section, []attr{{"MODE", mode}}, command)))
	return []byte(s + "\r\n")
}

var passwordAttr = regexp.MustCompile(`(?i)(PASSWORD\s*=\s*|<PASSWORD\s+VALUE\s*=\s*)("[^"]*"|'[^']*')`)

// MaskPasswords replaces every PASSWORD="..." attribute value (LOGIN and
// MOD_USER) with *****, for logs.
func MaskPasswords(b []byte) []byte {
	return passwordAttr.ReplaceAll(b, []byte(`${1}"*****"`))
}
