package pxe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// TFTPServer is a read-only TFTP server (RFC 1350 with the option
// extension RFC 2347: blksize RFC 2348, timeout and tsize RFC 2349,
// windowsize RFC 7440) over a Tree. Each transfer runs on its own UDP
// socket (its transfer ID). Write requests are refused.
type TFTPServer struct {
	Tree Tree
	Log  *slog.Logger
	// Timeout is the retransmission timeout when the client asks for none
	// (default 1s, doubled at each retry of a block up to 8 times it);
	// Retries how often a block is sent before the transfer is abandoned
	// (default 5: about 23 s of silence with the defaults).
	Timeout time.Duration
	Retries int
	// MaxBlockSize and MaxWindow cap what clients may negotiate (defaults
	// 65464 and 64).
	MaxBlockSize int
	MaxWindow    int
	// MaxTransfers bounds the transfers in flight (default 1024); a
	// request beyond it is answered "server busy".
	MaxTransfers int

	conn net.PacketConn
	wg   sync.WaitGroup
}

// ListenTFTP listens on the UDP address addr (host:port; port 0 picks one).
func ListenTFTP(addr string, tree Tree, log *slog.Logger) (*TFTPServer, error) {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("tftp: listen on %s: %w (set [pxe] tftp_address)", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TFTPServer{Tree: tree, Log: log, conn: c}, nil
}

// Addr is the address the server listens on.
func (s *TFTPServer) Addr() net.Addr { return s.conn.LocalAddr() }

// Serve answers requests until ctx is cancelled or the socket is closed,
// then waits for the transfers in flight to end.
func (s *TFTPServer) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	defer s.wg.Wait()
	buf := make([]byte, 65536)
	max := s.MaxTransfers
	if max <= 0 {
		max = 1024
	}
	slots := make(chan struct{}, max)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("tftp: read: %w", err)
		}
		pkt := append([]byte(nil), buf[:n]...)
		select {
		case slots <- struct{}{}:
		default:
			s.Log.Warn("tftp: too many transfers, request refused", "client", addr.String(), "max", cap(slots))
			s.conn.WriteTo(errorPacket(errNotDefined, "server busy, try again"), addr)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-slots; s.wg.Done() }()
			s.handle(ctx, pkt, addr)
		}()
	}
}

// Close stops the server.
func (s *TFTPServer) Close() error { return s.conn.Close() }

func (s *TFTPServer) handle(ctx context.Context, pkt []byte, client net.Addr) {
	// The transfer's own socket, on the address the client reached.
	local := "0.0.0.0:0"
	if ua, ok := s.conn.LocalAddr().(*net.UDPAddr); ok {
		local = net.JoinHostPort(ua.IP.String(), "0")
	}
	c, err := net.ListenPacket("udp", local)
	if err != nil {
		s.Log.Warn("tftp: cannot open a transfer socket", "client", client.String(), "err", err)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	req, err := ParseRequest(pkt)
	if err != nil {
		s.Log.Warn("tftp: bad request", "client", client.String(), "err", err)
		c.WriteTo(errorPacket(errIllegalOp, err.Error()), client)
		return
	}
	if req.Op == opWRQ {
		s.Log.Warn("tftp: write refused", "client", client.String(), "file", req.Filename)
		c.WriteTo(errorPacket(errAccess, "this server is read-only"), client)
		return
	}
	f, fi, err := s.Tree.Open(req.Filename)
	if err != nil {
		code, msg := uint16(errNotDefined), "cannot read the file"
		switch {
		case errors.Is(err, ErrRefused):
			code, msg = errAccess, "access violation: not a boot file of a registered node"
			s.Log.Warn("tftp: request refused", "client", client.String(), "file", req.Filename, "reason", err.Error())
		case errors.Is(err, fs.ErrNotExist):
			code, msg = errNotFound, "file not found"
			s.Log.Info("tftp: not found", "client", client.String(), "file", req.Filename)
		default:
			s.Log.Warn("tftp: open failed", "client", client.String(), "file", req.Filename, "err", err)
		}
		c.WriteTo(errorPacket(code, msg), client)
		return
	}
	defer f.Close()
	var src io.ReaderAt = f
	size := fi.Size()
	if req.Mode == "netascii" {
		data, err := netascii(f, 16<<20)
		if err != nil {
			c.WriteTo(errorPacket(errNotDefined, err.Error()), client)
			return
		}
		src, size = bytes.NewReader(data), int64(len(data))
	}
	maxBlock, maxWin := s.MaxBlockSize, s.MaxWindow
	if maxBlock <= 0 {
		maxBlock = maxBlockSize
	}
	if maxWin <= 0 {
		maxWin = 64
	}
	tsize := size
	if req.Mode == "netascii" {
		tsize = -1
	}
	neg := negotiate(req, maxBlock, maxWin, tsize)
	start := time.Now()
	t := &transfer{s: s, c: c, client: client, src: src, size: size, neg: neg}
	if err := t.run(); err != nil {
		s.Log.Warn("tftp: transfer failed", "client", client.String(), "file", req.Filename, "err", err)
		return
	}
	s.Log.Debug("tftp: sent", "client", client.String(), "file", req.Filename, "bytes", size,
		"blksize", neg.blockSize, "windowsize", neg.windowSize, "duration", time.Since(start))
}

// transfer is one read transfer.
type transfer struct {
	s      *TFTPServer
	c      net.PacketConn
	client net.Addr
	src    io.ReaderAt
	size   int64
	neg    negotiated
	buf    []byte
}

// timeout is how long the try-th send (0: the first) of a block waits for
// its acknowledgement: the client's negotiated timeout (RFC 2349: fixed),
// else the server's, doubled at each retry up to 8 times it (a firmware
// client that stalls for seconds, e.g. under a loaded hypervisor, is
// waited for; a lost packet still costs only the base timeout).
func (t *transfer) timeout(try int) time.Duration {
	if t.neg.timeoutSec > 0 {
		return time.Duration(t.neg.timeoutSec) * time.Second
	}
	base := time.Second
	if t.s.Timeout > 0 {
		base = t.s.Timeout
	}
	return base << min(try, 3)
}

func (t *transfer) retries() int {
	if t.s.Retries > 0 {
		return t.s.Retries
	}
	return 5
}

// errClientAbort is a transfer the client ended with an ERROR packet.
type errClientAbort struct {
	code int
	msg  string
}

func (e errClientAbort) Error() string { return fmt.Sprintf("client sent error %d: %s", e.code, e.msg) }

// await waits for an ACK from the client: it returns the block number,
// ok=false on timeout.
func (t *transfer) await(deadline time.Time) (uint16, bool, error) {
	buf := make([]byte, 516)
	for {
		if err := t.c.SetReadDeadline(deadline); err != nil {
			return 0, false, err
		}
		n, from, err := t.c.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, false, nil
			}
			return 0, false, err
		}
		if from.String() != t.client.String() {
			t.c.WriteTo(errorPacket(errUnknownTID, "unknown transfer ID"), from)
			continue
		}
		block, code, msg, ok := parseAck(buf[:n])
		if !ok {
			continue
		}
		if code >= 0 {
			return 0, false, errClientAbort{code, msg}
		}
		return block, true, nil
	}
}

// run sends the OACK (when options were accepted) and then the file in
// windows of blocks, each window acknowledged by the client.
func (t *transfer) run() error {
	if len(t.neg.ack) > 0 {
		acked := false
		for try := 0; try < t.retries() && !acked; try++ {
			if _, err := t.c.WriteTo(oackPacket(t.neg.ack), t.client); err != nil {
				return err
			}
			deadline := time.Now().Add(t.timeout(try))
			for {
				b, ok, err := t.await(deadline)
				if err != nil {
					var ab errClientAbort
					if errors.As(err, &ab) && ab.code == errOptionRefuse {
						return nil // the client declined our options: it ends the transfer
					}
					return err
				}
				if !ok {
					break
				}
				if b == 0 {
					acked = true
					break
				}
			}
		}
		if !acked {
			return errors.New("no acknowledgement of the options")
		}
	}
	bs := int64(t.neg.blockSize)
	last := t.size/bs + 1 // the final block is shorter than bs (possibly empty)
	t.buf = make([]byte, 4+bs)
	var acked int64 // highest block the client acknowledged
	tries := 0
	for acked < last {
		end := min(acked+int64(t.neg.windowSize), last)
		for b := acked + 1; b <= end; b++ {
			if err := t.send(b); err != nil {
				return err
			}
		}
		deadline := time.Now().Add(t.timeout(tries))
		progressed := false
		for acked < end {
			wire, ok, err := t.await(deadline)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			// Map the 16-bit block number (it rolls over to 0) into the window.
			for b := acked + 1; b <= end; b++ {
				if uint16(b) == wire {
					acked, progressed = b, true
					break
				}
			}
			if progressed && acked < end && t.neg.windowSize > 1 {
				break // a partial window acknowledged: resend from there
			}
		}
		if progressed {
			tries = 0
			continue
		}
		tries++
		if tries >= t.retries() {
			return fmt.Errorf("no acknowledgement of block %d after %d tries", acked+1, tries)
		}
	}
	return nil
}

func (t *transfer) send(block int64) error {
	bs := int64(t.neg.blockSize)
	off := (block - 1) * bs
	n := 0
	if off < t.size {
		var err error
		n, err = t.src.ReadAt(t.buf[4:4+bs], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	binary.BigEndian.PutUint16(t.buf, opDATA)
	binary.BigEndian.PutUint16(t.buf[2:], uint16(block))
	_, err := t.c.WriteTo(t.buf[:4+n], t.client)
	return err
}

// netascii converts a file for a netascii transfer (LF -> CR LF, CR -> CR
// NUL), refusing files larger than limit.
func netascii(f *os.File, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("netascii transfers are limited to %d bytes: use octet mode", limit)
	}
	out := make([]byte, 0, len(data)+len(data)/16)
	for _, c := range data {
		switch c {
		case '\n':
			out = append(out, '\r', '\n')
		case '\r':
			out = append(out, '\r', 0)
		default:
			out = append(out, c)
		}
	}
	return out, nil
}
