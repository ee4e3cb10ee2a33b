// Package iscsi writes a disk image to an iSCSI target from the conductor:
// the data path of the iscsi_ilo driver (ironic-ilo-behaviour §5.1), where
// the deploy ramdisk exports the node's root disk as LUN 1 of a target and
// lightsout writes the image over the network.
//
// The writer is Debian's qemu-img (qemu-utils) with its iscsi:// block
// driver (libiscsi, package qemu-block-extra): `qemu-img convert -n` in
// userspace. There is no kernel initiator on the machines lightsout runs on
// (no iscsi_tcp, no loadable modules), and no pure-Go iSCSI initiator is
// served by the module proxy (github.com/gostor/gotgt and the others are
// not available, see ../shared/reference/iscsi-and-qemu-boot.md A.8), so a
// library would have meant writing an initiator; qemu-img also converts
// qcow2 on the fly and writes only the allocated extents.
//
// The CHAP secret never appears on argv or in logs: it is written to a file
// in the run's work directory (mode 0600), handed to qemu-img as a secret
// object (--object secret,file=...), and removed when the write ends.
package iscsi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultPort is the iSCSI port IPA's start_iscsi_target listens on.
const DefaultPort = 3260

// Target is an iSCSI LUN to write to.
type Target struct {
	Portal     string // host:port
	IQN        string
	LUN        int    // 0 means 1 (IPA exports the disk as LUN 1)
	CHAPUser   string // empty: no CHAP
	CHAPSecret string
}

func (t Target) lun() int {
	if t.LUN == 0 {
		return 1
	}
	return t.LUN
}

// String is the target's iscsi:// URL without credentials (safe to log).
func (t Target) String() string {
	return fmt.Sprintf("iscsi://%s/%s/%d", t.Portal, t.IQN, t.lun())
}

// Options tunes one Write.
type Options struct {
	// WorkDir holds the temporary CHAP secret file (required with CHAP):
	// the run's work directory.
	WorkDir string
	// Format of the image: "raw", "qcow2" or "" (probed by qemu-img info).
	Format string
	// QemuImg is the qemu-img binary (default "qemu-img" on PATH).
	QemuImg string
	// Progress, when set, is called with the percentage written (0-100).
	Progress func(pct float64)
	// Checksum, when set, must match the image file before anything is
	// written: "algo:hex" (md5, sha1, sha256, sha512) or a bare md5 hex
	// (instance_info.image_checksum, as the agent checks it).
	Checksum string
	// Stall ends the write as "connection lost" when qemu-img reports no
	// progress for this long (libiscsi reconnects forever to a target
	// that vanished); default 2 minutes.
	Stall time.Duration
}

// Result describes a finished write.
type Result struct {
	Format    string        // the image format written from
	ImageSize int64         // the image's virtual size in bytes
	DiskSize  int64         // the LUN's size in bytes
	Duration  time.Duration // of the copy
}

// Kind classifies a write failure.
type Kind string

// The kinds of failure Write reports.
const (
	KindAuth        Kind = "auth"         // CHAP refused
	KindNotFound    Kind = "not_found"    // no such target IQN (or LUN)
	KindTooLarge    Kind = "too_large"    // the image does not fit the disk
	KindUnreachable Kind = "unreachable"  // nothing answers at the portal
	KindLost        Kind = "lost"         // the connection died mid-write
	KindImage       Kind = "image"        // the image cannot be read or is refused
	KindTool        Kind = "tool"         // qemu-img missing or failing otherwise
	KindCancelled   Kind = "cancelled"    // ctx ended
	KindInvalid     Kind = "invalid_args" // bad Target or Options
)

// Error is a classified write failure. Its message names the field to fix
// and never contains the CHAP secret.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ImageInfo is what qemu-img info reports of a local image.
type ImageInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ActualSize  int64  `json:"actual-size"`
	Backing     string `json:"backing-filename"`
}

// MB is n bytes in MiB, rounded up (Ironic's "MB").
func MB(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// TooLargeMessage is Ironic's §5.1 size message.
func TooLargeMessage(imageBytes, diskBytes int64) string {
	return fmt.Sprintf("Root partition is too small for requested image. Image size: %d MB, Root size: %d MB",
		MB(imageBytes), MB(diskBytes))
}

func qemuImg(o Options) string {
	if o.QemuImg != "" {
		return o.QemuImg
	}
	return "qemu-img"
}

// Inspect reads a local image's format and virtual size. format "" lets
// qemu-img probe it. Images with a backing file are refused (they would
// read other files of the conductor into the node's disk).
func Inspect(ctx context.Context, bin, path, format string) (ImageInfo, error) {
	if bin == "" {
		bin = "qemu-img"
	}
	args := []string{"info", "--output=json"}
	if format != "" {
		args = append(args, "-f", format)
	}
	args = append(args, "--", path)
	out, stderr, err := run(ctx, bin, args, nil)
	if err != nil {
		return ImageInfo{}, classifyLocal(ctx, path, stderr, err)
	}
	var info ImageInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return ImageInfo{}, &Error{Kind: KindTool, Msg: "qemu-img info " + path + ": unreadable output: " + err.Error(), Err: err}
	}
	if info.Backing != "" {
		return info, &Error{Kind: KindImage, Msg: fmt.Sprintf("image %s has a backing file (%s): flatten it first (qemu-img convert -O qcow2)", path, info.Backing)}
	}
	if info.Format != "raw" && info.Format != "qcow2" {
		return info, &Error{Kind: KindImage, Msg: fmt.Sprintf("image %s is %q: only raw and qcow2 images can be written over iSCSI (instance_info.image_disk_format)", path, info.Format)}
	}
	return info, nil
}

func classifyLocal(ctx context.Context, path, stderr string, err error) error {
	if ctx.Err() != nil {
		return &Error{Kind: KindCancelled, Msg: "reading image " + path + ": " + ctx.Err().Error(), Err: ctx.Err()}
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return &Error{Kind: KindTool, Msg: "qemu-img not found (install Debian's qemu-utils): " + ee.Error(), Err: err}
	}
	return &Error{Kind: KindImage, Msg: "reading image " + path + ": " + firstLine(stderr, err), Err: err}
}

// Write copies the image at path to the target's LUN with qemu-img
// convert -n (the LUN keeps its size; only the image's extents are
// written). It checks the LUN is at least as large as the image first.
func Write(ctx context.Context, t Target, path string, o Options) (Result, error) {
	if err := t.validate(); err != nil {
		return Result{}, err
	}
	info, err := Inspect(ctx, qemuImg(o), path, o.Format)
	if err != nil {
		return Result{}, err
	}
	res := Result{Format: info.Format, ImageSize: info.VirtualSize}
	if o.Checksum != "" {
		if err := VerifyChecksum(ctx, path, o.Checksum); err != nil {
			return res, err
		}
	}
	sec, cleanup, err := secretFile(t, o)
	if err != nil {
		return res, err
	}
	defer cleanup()

	// the LUN's size: also logs in once, so CHAP and IQN errors surface
	// before anything is written
	res.DiskSize, err = lunSize(ctx, t, o, sec)
	if err != nil {
		return res, err
	}
	if info.VirtualSize > res.DiskSize {
		return res, &Error{Kind: KindTooLarge, Msg: TooLargeMessage(info.VirtualSize, res.DiskSize) +
			" (target " + t.IQN + "; choose a larger root disk with properties.root_device or a smaller image)"}
	}
	res.Duration, err = convert(ctx, t, o, sec, path, info.Format, nil, o.Progress)
	return res, err
}

// lunSize logs in to the target and returns its LUN's size in bytes.
func lunSize(ctx context.Context, t Target, o Options, sec string) (int64, error) {
	args := append([]string{"info", "--output=json"}, secretArgs(sec)...)
	args = append(args, "--image-opts", t.opts(sec != ""))
	out, stderr, err := run(ctx, qemuImg(o), args, nil)
	if err != nil {
		return 0, t.classify(ctx, stderr, err, false)
	}
	var lun struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &lun); err != nil {
		return 0, &Error{Kind: KindTool, Msg: "qemu-img info " + t.String() + ": unreadable output", Err: err}
	}
	return lun.VirtualSize, nil
}

// window is a byte range of the LUN written through qemu's raw driver
// (offset=, size=) on top of the iscsi driver: qemu-img then sees a disk
// of exactly that range and cannot write outside it.
type window struct {
	Offset, Size int64
	// FromSource reads the source as the same kind of window, Size bytes
	// from SourceOffset, instead of the whole file.
	FromSource   bool
	SourceOffset int64
}

// convert runs qemu-img convert -n from the local file src (format) to the
// target, or to a window of it, with the stall watchdog of o.Stall.
func convert(ctx context.Context, t Target, o Options, sec, src, format string, w *window, progress func(float64)) (time.Duration, error) {
	// -W: out-of-order writes (1.4-1.5x over loopback, ../shared reference);
	// qemu-img still flushes the target before it exits
	args := []string{"convert", "-n", "-p", "-W"}
	if w != nil && w.FromSource {
		// a qemu option value escapes ',' as ',,'
		src = fmt.Sprintf("driver=%s,offset=%d,size=%d,file.driver=file,file.filename=%s", format, w.SourceOffset, w.Size,
			strings.ReplaceAll(src, ",", ",,"))
		args = append(args, "--image-opts")
	} else {
		args = append(args, "-f", format)
	}
	args = append(args, secretArgs(sec)...)
	dst := t.opts(sec != "")
	if w != nil {
		dst = fmt.Sprintf("driver=raw,offset=%d,size=%d,%s", w.Offset, w.Size, t.fileOpts(sec != ""))
	}
	args = append(args, "--target-image-opts", "--", src, dst)
	stall := o.Stall
	if stall <= 0 {
		stall = 2 * time.Minute
	}
	start := time.Now()
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("no progress for %s", stall)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	var mu sync.Mutex
	var progressed float64
	_, stderr, err := run(wctx, qemuImg(o), args, func(pct float64) {
		watchdog.Reset(stall)
		mu.Lock()
		progressed = pct
		mu.Unlock()
		if progress != nil {
			progress(pct)
		}
	})
	d := time.Since(start)
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil && errors.Is(context.Cause(wctx), errStalled) {
			return d, &Error{Kind: KindLost, Msg: fmt.Sprintf("connection to iSCSI target %s lost during the write: %s at %.0f%%", t, errStalled, progressed), Err: err}
		}
		return d, t.classify(ctx, stderr, err, progressed > 0)
	}
	return d, nil
}

func (t Target) validate() error {
	bad := func(msg string) error { return &Error{Kind: KindInvalid, Msg: msg} }
	switch {
	case t.Portal == "" || !strings.Contains(t.Portal, ":"):
		return bad(fmt.Sprintf("iSCSI portal %q must be host:port", t.Portal))
	case t.IQN == "" || strings.ContainsAny(t.IQN, ",/ \t\n"):
		return bad(fmt.Sprintf("iSCSI target IQN %q is empty or has ',', '/' or spaces", t.IQN))
	case t.lun() < 0:
		return bad(fmt.Sprintf("iSCSI LUN %d must be >= 0", t.LUN))
	case (t.CHAPUser == "") != (t.CHAPSecret == ""):
		return bad("CHAP needs both chap_user and chap_secret (driver_info.iscsi_chap)")
	case strings.ContainsAny(t.CHAPUser, ", \t\n="):
		return bad(fmt.Sprintf("CHAP user %q has ',', '=' or spaces", t.CHAPUser))
	case strings.ContainsAny(t.Portal, ",= \t\n"):
		return bad(fmt.Sprintf("iSCSI portal %q has ',', '=' or spaces", t.Portal))
	}
	return nil
}

// opts is the target as qemu --image-opts (no secret: it is referenced by id).
func (t Target) opts(chap bool) string {
	s := fmt.Sprintf("driver=iscsi,transport=tcp,portal=%s,target=%s,lun=%d", t.Portal, t.IQN, t.lun())
	if chap {
		s += ",user=" + t.CHAPUser + ",password-secret=chap0"
	}
	return s
}

// fileOpts is opts as the file child of another driver (file.driver=iscsi,...).
func (t Target) fileOpts(chap bool) string {
	parts := strings.Split(t.opts(chap), ",")
	for i := range parts {
		parts[i] = "file." + parts[i]
	}
	return strings.Join(parts, ",")
}

func secretArgs(file string) []string {
	if file == "" {
		return nil
	}
	return []string{"--object", "secret,id=chap0,format=raw,file=" + file}
}

// secretFile writes the CHAP secret to a 0600 file in o.WorkDir.
func secretFile(t Target, o Options) (string, func(), error) {
	if t.CHAPUser == "" {
		return "", func() {}, nil
	}
	if o.WorkDir == "" {
		return "", nil, &Error{Kind: KindInvalid, Msg: "CHAP needs a work directory for the secret file (Options.WorkDir)"}
	}
	f, err := os.CreateTemp(o.WorkDir, ".chap-*")
	if err != nil {
		return "", nil, &Error{Kind: KindTool, Msg: "creating the CHAP secret file in " + o.WorkDir + ": " + err.Error(), Err: err}
	}
	name := f.Name()
	cleanup := func() { _ = os.Remove(name) }
	if strings.ContainsAny(name, ",") {
		_ = f.Close()
		cleanup()
		return "", nil, &Error{Kind: KindInvalid, Msg: "work directory " + o.WorkDir + " has a ',' (qemu option syntax)"}
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(t.CHAPSecret)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, &Error{Kind: KindTool, Msg: "writing the CHAP secret file: " + err.Error(), Err: err}
	}
	return name, cleanup, nil
}

// classify turns a failed qemu-img run against the target into an *Error.
func (t Target) classify(ctx context.Context, stderr string, err error, started bool) error {
	msg := firstLine(stderr, err)
	// libiscsi may print reconnect notices before the line that says why
	// it gave up: the reason decides, wherever it is
	for _, key := range []string{"Authentication failure", "Target not found", "Cannot grow", "smaller than input"} {
		if l := lineWith(stderr, key); l != "" {
			msg = l
			break
		}
	}
	if t.CHAPSecret != "" {
		msg = strings.ReplaceAll(msg, t.CHAPSecret, "******")
	}
	e := &Error{Err: err}
	switch {
	case ctx.Err() != nil:
		e.Kind, e.Msg, e.Err = KindCancelled, "writing to "+t.String()+" stopped: "+ctx.Err().Error(), ctx.Err()
	case errors.As(err, new(*exec.Error)):
		e.Kind, e.Msg = KindTool, "qemu-img not found (install Debian's qemu-utils and qemu-block-extra): "+err.Error()
	case strings.Contains(msg, "Unknown driver 'iscsi'") || strings.Contains(msg, "Unknown protocol"):
		e.Kind, e.Msg = KindTool, "qemu-img has no iscsi driver (install Debian's qemu-block-extra): "+msg
	case strings.Contains(msg, "Authentication failure"):
		e.Kind = KindAuth
		if t.CHAPUser == "" {
			e.Msg = "iSCSI target " + t.IQN + " at " + t.Portal + " requires CHAP and none was given: set driver_info.iscsi_chap (" + msg + ")"
		} else {
			e.Msg = "iSCSI target " + t.IQN + " at " + t.Portal + " refused the CHAP credentials of user " + t.CHAPUser +
				": check driver_info.iscsi_chap and the secret the ramdisk was given (" + msg + ")"
		}
	case strings.Contains(msg, "Target not found") || strings.Contains(msg, "not found") && strings.Contains(msg, "arget"):
		e.Kind, e.Msg = KindNotFound, "iSCSI target IQN "+t.IQN+" not found at "+t.Portal+": the ramdisk exports another IQN or none ("+msg+")"
	case started:
		e.Kind, e.Msg = KindLost, "connection to iSCSI target "+t.String()+" lost during the write: "+msg
	case strings.Contains(msg, "reconnect") || strings.Contains(msg, "refused") || strings.Contains(msg, "Failed to connect"):
		e.Kind, e.Msg = KindUnreachable, "no iSCSI target answers at "+t.Portal+" (is the ramdisk's target started?): "+msg
	default:
		e.Kind, e.Msg = KindLost, "writing to iSCSI target "+t.String()+" failed: "+msg
	}
	return e
}

// lineWith is the first line of stderr holding key (trimmed, without the
// "qemu-img:" prefix), or "".
func lineWith(stderr, key string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, key) {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "qemu-img:"))
		}
	}
	return ""
}

func firstLine(stderr string, err error) string {
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "qemu-img:"))
		if l != "" {
			return l
		}
	}
	return err.Error()
}

// run starts bin in its own process group, killed (the whole group) when
// ctx ends or (Linux) when lightsout dies, and returns stdout and stderr. With progress set, stdout is
// parsed as qemu-img -p output ("    (12.00/100%)\r").
func run(ctx context.Context, bin string, args []string, progress func(float64)) ([]byte, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	// Pdeathsig: a lightsout killed with -9 takes its qemu-img along (else
	// it would reconnect forever to the target recover.lua powers off)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var stdout bytes.Buffer
	var wg sync.WaitGroup
	if progress != nil {
		pr, pw := io.Pipe()
		cmd.Stdout = pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			parseProgress(pr, progress)
		}()
		err := cmd.Run()
		_ = pw.Close()
		wg.Wait()
		return nil, stderr.String(), err
	}
	cmd.Stdout = &stdout
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

// parseProgress reads qemu-img -p output and reports each new percentage.
func parseProgress(r io.Reader, fn func(float64)) {
	sc := bufio.NewScanner(r)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	last := -1.0
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		s = strings.TrimPrefix(s, "(")
		s, _, ok := strings.Cut(s, "/")
		if !ok {
			continue
		}
		if pct, err := strconv.ParseFloat(s, 64); err == nil && pct != last {
			last = pct
			fn(pct)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// VerifyChecksum checks the file at path against want ("algo:hex" with
// algo md5, sha1, sha256 or sha512, or a bare md5 hex digest).
func VerifyChecksum(ctx context.Context, path, want string) error {
	algo, val, ok := strings.Cut(want, ":")
	if !ok {
		algo, val = "md5", want
	}
	var h hash.Hash
	switch strings.ToLower(algo) {
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return &Error{Kind: KindInvalid, Msg: fmt.Sprintf("instance_info.image_checksum: unknown algorithm %q (md5, sha1, sha256, sha512)", algo)}
	}
	f, err := os.Open(path)
	if err != nil {
		return &Error{Kind: KindImage, Msg: "reading image " + path + ": " + err.Error(), Err: err}
	}
	defer f.Close()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		if ctx.Err() != nil {
			return &Error{Kind: KindCancelled, Msg: "checksumming " + path + ": " + ctx.Err().Error(), Err: ctx.Err()}
		}
		return &Error{Kind: KindImage, Msg: "reading image " + path + ": " + err.Error(), Err: err}
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, val) {
		return &Error{Kind: KindImage, Msg: fmt.Sprintf("image %s: %s checksum %s does not match instance_info.image_checksum %s", path, algo, got, val)}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
