package pxe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TFTP opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// TFTP error codes (RFC 1350, RFC 2347).
const (
	errNotDefined   = 0
	errNotFound     = 1
	errAccess       = 2
	errIllegalOp    = 4
	errUnknownTID   = 5
	errOptionRefuse = 8
)

// Option limits (RFC 2348, 2349, 7440).
const (
	minBlockSize   = 8
	maxBlockSize   = 65464
	defBlockSize   = 512
	maxWindowSize  = 65535
	maxTimeoutSecs = 255
)

// Request is a parsed read or write request.
type Request struct {
	Op       uint16 // opRRQ or opWRQ
	Filename string
	Mode     string            // "octet" or "netascii" (lower case)
	Options  map[string]string // option names lower case (RFC 2347: case-insensitive)
	// Order is the order the options appeared in (an OACK answers in it).
	Order []string
}

// errMalformed is returned for a packet that is not a valid request.
var errMalformed = errors.New("malformed TFTP request")

// ParseRequest parses an RRQ or WRQ packet: opcode, filename, mode and
// option/value pairs, each NUL-terminated. It never panics on any input.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if len(b) < 2 {
		return r, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	r.Op = binary.BigEndian.Uint16(b)
	if r.Op != opRRQ && r.Op != opWRQ {
		return r, fmt.Errorf("%w: opcode %d is not a read or write request", errMalformed, r.Op)
	}
	fields, err := splitNUL(b[2:])
	if err != nil {
		return r, err
	}
	if len(fields) < 2 {
		return r, fmt.Errorf("%w: no filename and mode", errMalformed)
	}
	if fields[0] == "" {
		return r, fmt.Errorf("%w: empty filename", errMalformed)
	}
	r.Filename = fields[0]
	r.Mode = strings.ToLower(fields[1])
	switch r.Mode {
	case "octet", "netascii":
	default:
		return r, fmt.Errorf("%w: mode %q (want octet or netascii)", errMalformed, fields[1])
	}
	opts := fields[2:]
	if len(opts)%2 != 0 {
		return r, fmt.Errorf("%w: option %q has no value", errMalformed, opts[len(opts)-1])
	}
	for i := 0; i < len(opts); i += 2 {
		k := strings.ToLower(opts[i])
		if r.Options == nil {
			r.Options = map[string]string{}
		}
		if _, dup := r.Options[k]; dup {
			continue // the first one counts
		}
		r.Options[k] = opts[i+1]
		r.Order = append(r.Order, k)
	}
	return r, nil
}

// splitNUL splits NUL-terminated strings; the last must be terminated too.
func splitNUL(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: unterminated string", errMalformed)
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out, nil
}

// negotiated are the transfer parameters after option negotiation.
type negotiated struct {
	blockSize  int
	windowSize int
	timeoutSec int // 0: the server's default
	tsize      bool
	// ack lists the options accepted, in request order, with their values.
	ack []string
}

// negotiate applies the options of r (RFC 2347/2348/2349/7440) within the
// server's limits; unknown or unusable options are ignored (not acknowledged).
// size is the file size (-1: unknown, e.g. netascii).
func negotiate(r Request, maxBlock, maxWindow int, size int64) negotiated {
	n := negotiated{blockSize: defBlockSize, windowSize: 1}
	for _, k := range r.Order {
		v := r.Options[k]
		num, err := strconv.Atoi(v)
		switch k {
		case "blksize":
			if err != nil || num < minBlockSize {
				continue
			}
			n.blockSize = min(num, maxBlock, maxBlockSize)
			n.ack = append(n.ack, k, strconv.Itoa(n.blockSize))
		case "windowsize":
			if err != nil || num < 1 || num > maxWindowSize {
				continue
			}
			n.windowSize = min(num, maxWindow)
			n.ack = append(n.ack, k, strconv.Itoa(n.windowSize))
		case "timeout":
			if err != nil || num < 1 || num > maxTimeoutSecs {
				continue
			}
			n.timeoutSec = num
			n.ack = append(n.ack, k, strconv.Itoa(num))
		case "tsize":
			if size < 0 {
				continue
			}
			n.tsize = true
			n.ack = append(n.ack, k, strconv.FormatInt(size, 10))
		}
	}
	return n
}

// oackPacket builds an OACK with the given name/value pairs.
func oackPacket(pairs []string) []byte {
	b := []byte{0, opOACK}
	for _, s := range pairs {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

// errorPacket builds an ERROR packet.
func errorPacket(code uint16, msg string) []byte {
	b := make([]byte, 4, 5+len(msg))
	binary.BigEndian.PutUint16(b, opERROR)
	binary.BigEndian.PutUint16(b[2:], code)
	b = append(b, msg...)
	return append(b, 0)
}

// parseAck returns the block number of an ACK, or the error of an ERROR
// packet, or ok=false for anything else.
func parseAck(b []byte) (block uint16, errCode int, errMsg string, ok bool) {
	if len(b) < 4 {
		return 0, 0, "", false
	}
	switch binary.BigEndian.Uint16(b) {
	case opACK:
		return binary.BigEndian.Uint16(b[2:]), -1, "", true
	case opERROR:
		msg := b[4:]
		if i := bytes.IndexByte(msg, 0); i >= 0 {
			msg = msg[:i]
		}
		return 0, int(binary.BigEndian.Uint16(b[2:])), string(msg), true
	}
	return 0, 0, "", false
}
