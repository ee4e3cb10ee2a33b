// Package jsonstrict checks JSON documents for what encoding/json accepts
// silently: invalid UTF-8 (replaced by U+FFFD) and duplicate object keys
// (the last one wins).
package jsonstrict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of a checked document.
const MaxDepth = 1000

// Error is a problem found at a position of the document.
type Error struct {
	Line, Column int
	// Path is where the problem is, as in $.nodes[2].driver_info.
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("line %d, column %d (%s): %s", e.Line, e.Column, e.Path, e.Msg)
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Check returns an *Error for invalid UTF-8 anywhere in data, a duplicate
// key in any object at any depth, nesting deeper than MaxDepth, or a JSON
// syntax error; nil for a valid document.
func Check(data []byte) error {
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		l, c := position(data, off)
		return &Error{Line: l, Column: c, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x at offset %d): save the file as UTF-8", data[off], off)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := walk(dec, data, "$", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		l, c := position(data, int(dec.InputOffset()))
		return &Error{Line: l, Column: c, Msg: "unexpected data after the end of the JSON value"}
	}
	return nil
}

func walk(dec *json.Decoder, data []byte, path string, depth int) error {
	start := int(dec.InputOffset())
	tok, err := dec.Token()
	if err != nil {
		return syntax(data, dec, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= MaxDepth {
		l, c := position(data, start)
		return &Error{Line: l, Column: c, Path: path, Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			at := int(dec.InputOffset())
			kt, err := dec.Token()
			if err != nil {
				return syntax(data, dec, err)
			}
			k, _ := kt.(string)
			if seen[k] {
				l, c := position(data, skipSpace(data, at))
				return &Error{Line: l, Column: c, Path: path, Msg: fmt.Sprintf("duplicate key %q: give each key once", k)}
			}
			seen[k] = true
			if err := walk(dec, data, path+"."+k, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := walk(dec, data, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return syntax(data, dec, err)
	}
	return nil
}

func syntax(data []byte, dec *json.Decoder, err error) error {
	off := int(dec.InputOffset())
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		off = len(data)
		err = errors.New("unexpected end of the file")
	}
	l, c := position(data, off)
	return &Error{Line: l, Column: c, Msg: "invalid JSON: " + err.Error()}
}

// skipSpace returns the offset of the first non-space byte (and not a comma
// or colon) at or after off.
func skipSpace(data []byte, off int) int {
	for off < len(data) && bytes.IndexByte([]byte(" \t\r\n,:"), data[off]) >= 0 {
		off++
	}
	return off
}

// position converts a byte offset to a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
