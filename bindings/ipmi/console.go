package ipmi

import (
	"bufio"
	"context"
	"io"
	"time"

	gclient "github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/transport"
	gotypes "github.com/bougou/go-ipmi/pkg/types"
)

// ccPayloadAlreadyActive is Activate Payload's "payload already active on
// another session" (IPMI v2.0 Table 24-2).
const ccPayloadAlreadyActive = 0x80

// EscapeSequence leaves a console session when typed at the start of a
// line, as ipmitool's (go-ipmi's own "~X" works too).
const EscapeSequence = "~."

// Console attaches in and out to the BMC's Serial-over-LAN console until
// ctx ends, in reaches EOF or the user types EscapeSequence at the start of
// a line. The session is not retried: a console that drops is left. A SOL
// payload left active by a session that went away (a killed process, a
// client that exited without deactivating) is taken over, as `ipmitool sol
// deactivate` then `sol activate` would: it is deactivated once and the
// activation retried.
func (c *Client) Console(ctx context.Context, in io.Reader, out io.Writer) error {
	return c.ConsolePoll(ctx, in, out, 0, nil)
}

// ConsolePoll is Console polling the BMC for output every poll (0: go-ipmi's
// 100ms), calling activated (when not nil) once SOL is active. The BMC sends
// one packet per poll, so a capture that must keep up with a fast-printing
// server polls more often.
func (c *Client) ConsolePoll(ctx context.Context, in io.Reader, out io.Writer, poll time.Duration, activated func()) error {
	var err error
	if e := c.once(ctx, "console", func(ctx context.Context, gc *gclient.Client) error {
		noop := func(uint8, io.Reader, io.Writer, *transport.ActivatePayloadResponse) {}
		onActivated := noop
		if activated != nil {
			onActivated = func(uint8, io.Reader, io.Writer, *transport.ActivatePayloadResponse) { activated() }
		}
		opts := func() *gclient.SOLActivateOptions {
			return &gclient.SOLActivateOptions{OnActivated: onActivated, OnDeactivated: noop, PollInterval: poll}
		}
		esc := newEscapeReader(in)
		err = gc.SOLActivate(ctx, esc, out, opts())
		if re, ok := gotypes.IsResponseError(err); ok && re.CompletionCode() == ccPayloadAlreadyActive {
			if _, derr := gc.DeactivatePayload(ctx, &transport.DeactivatePayloadRequest{
				PayloadType: gotypes.PayloadTypeSOL, PayloadInstance: 1}); derr == nil {
				err = gc.SOLActivate(ctx, esc, out, opts())
			}
		}
		return err
	}); e != nil {
		return e
	}
	return nil
}

// escapeReader returns io.EOF when "~." starts a line.
type escapeReader struct {
	r           *bufio.Reader
	atLineStart bool
}

func newEscapeReader(in io.Reader) *escapeReader {
	return &escapeReader{r: bufio.NewReader(in), atLineStart: true}
}

func (e *escapeReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := e.r.ReadByte()
	if err != nil {
		return 0, err
	}
	if e.atLineStart && b == '~' {
		next, err := e.r.Peek(1)
		if err == nil && next[0] == '.' {
			_, _ = e.r.Discard(1)
			return 0, io.EOF
		}
	}
	e.atLineStart = b == '\r' || b == '\n'
	p[0] = b
	return 1, nil
}
