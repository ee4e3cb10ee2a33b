package deployagent

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/lightsout/lightsout/runtime/deployagent/qcow2"
)

// ImageInfo is standby.prepare_image's image_info.
type ImageInfo struct {
	ID          string
	URLs        []string
	DiskFormat  string // raw (default) or qcow2
	ImageType   string // whole-disk (default) or partition
	Checksum    string // legacy image_checksum (md5, or by length / "algo:hex")
	OSHashAlgo  string
	OSHashValue string
}

// ParseImageInfo reads image_info from command params, checking the
// fields IPA requires.
func ParseImageInfo(params map[string]any) (ImageInfo, error) {
	info, ok := params["image_info"].(map[string]any)
	if !ok {
		return ImageInfo{}, errors.New("image_info must be an object with id, urls and a checksum")
	}
	str := func(k string) string { s, _ := info[k].(string); return s }
	ii := ImageInfo{ID: str("id"), DiskFormat: strings.ToLower(str("disk_format")), ImageType: str("image_type"),
		Checksum: str("checksum"), OSHashAlgo: str("os_hash_algo"), OSHashValue: str("os_hash_value")}
	if ii.ID == "" {
		return ImageInfo{}, errors.New("image_info.id is missing")
	}
	urls, _ := info["urls"].([]any)
	for i, u := range urls {
		s, _ := u.(string)
		if s == "" {
			return ImageInfo{}, fmt.Errorf("image_info.urls[%d] must be a URL string", i)
		}
		ii.URLs = append(ii.URLs, s)
	}
	if len(ii.URLs) == 0 {
		return ImageInfo{}, errors.New("image_info.urls must list at least one URL")
	}
	if ii.Checksum == "" && (ii.OSHashAlgo == "" || ii.OSHashValue == "") {
		return ImageInfo{}, errors.New("image_info needs checksum (md5) or os_hash_algo and os_hash_value")
	}
	if _, _, err := ii.expected(); err != nil {
		return ImageInfo{}, err
	}
	switch ii.DiskFormat {
	case "", "raw", "qcow2":
	default:
		return ImageInfo{}, fmt.Errorf("image_info.disk_format %q is not supported: use raw or qcow2", ii.DiskFormat)
	}
	return ii, nil
}

func validateImageParams(params map[string]any) error {
	_, err := ParseImageInfo(params)
	return err
}

// newHash returns the hash for an os_hash_algo name.
func newHash(algo string) (hash.Hash, error) {
	switch strings.ToLower(algo) {
	case "md5":
		return md5.New(), nil
	case "sha1":
		return sha1.New(), nil
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported os_hash_algo %q (md5, sha1, sha256, sha512)", algo)
}

// expected picks the algorithm and digest as IPA does: os_hash_algo and
// os_hash_value first, else checksum (an "algo:hex" prefix, else its
// length tells md5, sha1, sha256 or sha512).
func (ii ImageInfo) expected() (algo, value string, err error) {
	if ii.OSHashAlgo != "" && ii.OSHashValue != "" {
		algo, value = strings.ToLower(ii.OSHashAlgo), strings.ToLower(strings.TrimSpace(ii.OSHashValue))
	} else {
		value = strings.ToLower(strings.TrimSpace(ii.Checksum))
		if a, v, ok := strings.Cut(value, ":"); ok {
			algo, value = a, v
		} else {
			algo = map[int]string{32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}[len(value)]
			if algo == "" {
				return "", "", fmt.Errorf("checksum %q is not an md5, sha1, sha256 or sha512 hex digest", value)
			}
		}
	}
	if _, err := hex.DecodeString(value); err != nil {
		return "", "", fmt.Errorf("checksum %q is not a hex digest", value)
	}
	h, err := newHash(algo)
	if err != nil {
		return "", "", err
	}
	if len(value) != 2*h.Size() {
		return "", "", fmt.Errorf("checksum %q has %d hex digits, %s needs %d", value, len(value), algo, 2*h.Size())
	}
	return algo, value, nil
}

// writeProgress is the state of a running image write.
type writeProgress struct {
	start   time.Time
	read    atomic.Int64 // bytes of the image stream consumed
	written atomic.Int64 // bytes written to the disk
	total   atomic.Int64 // stream length (Content-Length), or 0
}

func (p *writeProgress) snapshot() DeployProgress {
	w, t := p.read.Load(), p.total.Load()
	el := time.Since(p.start).Seconds()
	var rate int64
	if el > 0 {
		rate = int64(float64(w) / el)
	}
	return DeployProgress{Written: w, Total: t, Rate: rate}
}

var bytesEqual = bytes.Equal

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Target is where an image is written: a block device or a regular file.
type Target interface {
	io.WriterAt
	io.Writer
}

// DiskFile is an image target on a disk: File for unaligned writes,
// zeroing and flushes, and Direct, the same block device opened with
// O_DIRECT, for the writes whose offset, length and buffer are 4 KiB
// aligned (all of a raw image but its tail). Direct writes skip the page
// cache: no copy of each byte in the ramdisk (under emulation that copy
// cost as much as the download) and no dirty pages left to the final
// flush. IPA writes with qemu-img -t directsync for the same reason.
type DiskFile struct {
	*os.File
	Direct *os.File // nil: every write goes through File
}

// directAlign is the alignment of O_DIRECT writes (any logical block
// size up to 4 KiB).
const directAlign = 4096

// WriteAt writes through Direct when p and off are aligned.
func (d DiskFile) WriteAt(p []byte, off int64) (int, error) {
	if d.Direct != nil && len(p) > 0 && off%directAlign == 0 && len(p)%directAlign == 0 &&
		uintptr(unsafe.Pointer(&p[0]))%directAlign == 0 {
		return d.Direct.WriteAt(p, off)
	}
	return d.File.WriteAt(p, off)
}

// WriteResult is what WriteImage did.
type WriteResult struct {
	Written int64          // bytes written to the target
	Holes   []qcow2.Extent // ranges the caller must zero (qcow2 holes)
}

// WriteImage streams an image of format "raw" or "qcow2" from r to dst
// (at most size bytes), without a temporary copy. Raw images are written
// as they come; qcow2 images are converted on the fly and their holes
// returned, to be zeroed after the checksum matched. It consumes r to its end.
func WriteImage(ctx context.Context, r io.Reader, format string, dst Target, size int64, written *atomic.Int64) (WriteResult, error) {
	if written == nil {
		written = new(atomic.Int64)
	}
	if format == "qcow2" {
		res, err := qcow2.Convert(ctx, r, countingWriterAt{dst, written}, qcow2.Options{MaxSize: size})
		if err != nil {
			return WriteResult{Written: written.Load()}, err
		}
		return WriteResult{Written: res.Written, Holes: res.Holes}, nil
	}
	buf := make([]byte, 4<<20)
	f, isFile := dst.(*os.File)
	if d, ok := dst.(DiskFile); ok {
		f, isFile = d.File, true
	}
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return WriteResult{Written: off}, err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if size > 0 && off+int64(n) > size {
				return WriteResult{Written: off}, fmt.Errorf("image is larger than the disk (%d bytes): pick a larger disk with root device hints", size)
			}
			if err := writeBlocks(dst, f, isFile, buf[:n], off); err != nil {
				return WriteResult{Written: off}, err
			}
			off += int64(n)
			written.Store(off)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				return WriteResult{Written: off}, nil
			}
			return WriteResult{Written: off}, rerr
		}
	}
}

// zeroBlock is compared with image blocks: all-zero blocks of a raw image
// are zeroed with ZeroRange (BLKZEROOUT on a disk) instead of written.
var zeroBlock = make([]byte, 1<<20)

// writeBlocks writes b at off, 1 MiB block by block, turning runs of zero
// blocks into one ZeroRange when dst is a file or device.
func writeBlocks(dst Target, f *os.File, isFile bool, b []byte, off int64) error {
	if !isFile {
		if _, err := dst.WriteAt(b, off); err != nil {
			return fmt.Errorf("writing at disk offset %d: %w", off, err)
		}
		return nil
	}
	flush := func(start, end int, zero bool) error {
		if end <= start {
			return nil
		}
		if zero {
			if err := zeroRange(f, off+int64(start), int64(end-start)); err != nil {
				return fmt.Errorf("zeroing at disk offset %d: %w", off+int64(start), err)
			}
			return nil
		}
		if _, err := dst.WriteAt(b[start:end], off+int64(start)); err != nil {
			return fmt.Errorf("writing at disk offset %d: %w", off+int64(start), err)
		}
		return nil
	}
	runStart, runZero := 0, false
	for i := 0; i < len(b); i += len(zeroBlock) {
		end := min(i+len(zeroBlock), len(b))
		z := end-i == len(zeroBlock) && bytesEqual(b[i:end], zeroBlock)
		if i > 0 && z != runZero {
			if err := flush(runStart, i, runZero); err != nil {
				return err
			}
			runStart = i
		}
		runZero = z
	}
	return flush(runStart, len(b), runZero)
}

type countingWriterAt struct {
	w io.WriterAt
	n *atomic.Int64
}

func (c countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func downloadError(id, u string, start time.Time, format string, args ...any) *RESTError {
	return &RESTError{Type: "ImageDownloadError", Code: 500, Message: "Error downloading image",
		Details: fmt.Sprintf("Download of image %s failed: URL: %s; time: %.1f seconds. Error: %s",
			id, stripQuery(u), time.Since(start).Seconds(), fmt.Sprintf(format, args...))}
}

// rootHints returns the root device hints: the node's
// instance_info.root_device or properties.root_device (from lookup), else
// the root_device boot parameter.
func (a *Agent) rootHints() (map[string]any, error) {
	a.mu.Lock()
	node := a.node
	a.mu.Unlock()
	for _, k := range []string{"instance_info", "properties"} {
		sec, _ := node[k].(map[string]any)
		switch h := sec["root_device"].(type) {
		case map[string]any:
			if len(h) > 0 {
				return h, nil
			}
		case string:
			if h != "" {
				return ParseHintString(h)
			}
		}
	}
	if s := a.cfg.Params.RootDevice; s != "" {
		return ParseHintString(s)
	}
	return nil, nil
}

// RootDevice picks the install disk (root device hints as Ironic).
func (a *Agent) RootDevice() (Disk, error) {
	disks, err := a.cfg.Disks()
	if err != nil {
		return Disk{}, fmt.Errorf("listing disks: %w", err)
	}
	hints, err := a.rootHints()
	if err != nil {
		return Disk{}, err
	}
	return PickRootDevice(disks, hints)
}

func (a *Agent) prepareImage(ctx context.Context, params map[string]any) (any, *RESTError) {
	ii, err := ParseImageInfo(params)
	if err != nil {
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters", Details: err.Error()}
	}
	if ii.ImageType == "partition" {
		return nil, &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: "partition images are not supported by the lightsout agent: it does not partition disks nor carry GRUB (grub-install, efibootmgr); deploy a whole-disk image or boot an ironic-python-agent ramdisk"}
	}
	if cd, _ := params["configdrive"].(string); cd != "" {
		return nil, &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: "a configdrive was given but the lightsout agent cannot write config drives yet; deploy without one or boot an ironic-python-agent ramdisk"}
	}
	dev, err := a.RootDevice()
	if err != nil {
		return nil, &RESTError{Type: "DeviceNotFound", Code: 404, Message: "Error finding the disk or partition device to deploy the image onto", Details: err.Error()}
	}
	if rerr := a.writeImage(ctx, ii, dev); rerr != nil {
		return nil, rerr
	}
	a.mu.Lock()
	d := dev
	a.rootDisk = &d
	a.mu.Unlock()
	return fmt.Sprintf("image (%s) written to device %s", ii.ID, dev.Name), nil
}

// writeImage downloads the image (trying each URL until one answers),
// verifies the checksum while writing, zeroes qcow2 holes once it matched,
// and flushes the disk. Progress goes to heartbeats and the console.
func (a *Agent) writeImage(ctx context.Context, ii ImageInfo, dev Disk) *RESTError {
	start := time.Now()
	algo, want, _ := ii.expected()
	h, _ := newHash(algo)
	var (
		resp *http.Response
		u    string
		errs []string
	)
	for _, cand := range ii.URLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cand, nil)
		if err != nil {
			errs = append(errs, stripQuery(cand)+": invalid URL")
			continue
		}
		r, err := a.client.Do(req)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", stripQuery(cand), unwrapURLError(err)))
			continue
		}
		if r.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 512))
			r.Body.Close()
			errs = append(errs, fmt.Sprintf("Received status code %d from %s, expected 200. Response body: %s", r.StatusCode, stripQuery(cand), strings.TrimSpace(string(body))))
			continue
		}
		resp, u = r, cand
		break
	}
	if resp == nil {
		return downloadError(ii.ID, ii.URLs[0], start, "%s", strings.Join(errs, "; "))
	}
	defer resp.Body.Close()

	f, err := os.OpenFile(dev.Path, os.O_RDWR, 0)
	if err != nil {
		return &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: fmt.Sprintf("Opening device %s failed: %v", dev.Name, err)}
	}
	defer f.Close()
	size := dev.Size
	if size <= 0 {
		size, _ = f.Seek(0, io.SeekEnd)
	}
	if resp.ContentLength > 0 && ii.DiskFormat != "qcow2" && resp.ContentLength > size {
		return &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: fmt.Sprintf("image %s (%d bytes) is larger than device %s (%d bytes): pick a larger disk with root device hints", ii.ID, resp.ContentLength, dev.Name, size)}
	}

	prog := &writeProgress{start: time.Now()}
	prog.total.Store(max(resp.ContentLength, 0))
	a.progress.Store(prog)
	defer a.progress.Store(nil)
	stop := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		a.reportProgress(prog, stop)
	}()
	// download and checksum in a goroutine ahead of the disk writes
	src := newReadAhead(countingReader{resp.Body, &prog.read}, h, 4<<20, 4)
	disk := DiskFile{File: f, Direct: openDirect(f)}
	if disk.Direct != nil {
		defer disk.Direct.Close()
	}
	res, werr := WriteImage(ctx, src, ii.DiskFormat, disk, size, &prog.written)
	src.Close()
	close(stop)
	<-reported
	if werr != nil {
		if ctx.Err() != nil {
			return downloadError(ii.ID, u, start, "%v", ctx.Err())
		}
		return &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: fmt.Sprintf("Writing image %s to device %s failed after %d bytes: %v", ii.ID, dev.Name, res.Written, werr)}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		_ = f.Sync()
		return &RESTError{Type: "ImageChecksumError", Code: 500, Message: "Error verifying image checksum",
			Details: fmt.Sprintf("Image failed to verify against checksum. location: %s; image ID: %s; image checksum: %s; verification checksum: %s; %d bytes were written to %s",
				stripQuery(u), ii.ID, got, want, res.Written, dev.Name)}
	}
	for _, hole := range res.Holes {
		if err := zeroRange(f, hole.Offset, hole.Length); err != nil {
			return &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
				Details: fmt.Sprintf("Zeroing %d bytes at offset %d of %s failed: %v", hole.Length, hole.Offset, dev.Name, err)}
		}
	}
	if err := f.Sync(); err != nil {
		return &RESTError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: fmt.Sprintf("Flushing %s failed: %v", dev.Name, err)}
	}
	rereadPartitions(f)
	el := time.Since(prog.start).Seconds()
	a.Console("%s 100%% %.1f MB/s", ConsoleWrite, float64(prog.read.Load())/1e6/max(el, 1e-3))
	a.log.Info("image written", "image", ii.ID, "device", dev.Name, "bytes", res.Written, "seconds", el)
	return nil
}

// reportProgress prints a LIGHTSOUT-AGENT-WRITE line and forces a
// heartbeat (with deploy_progress) every ProgressInterval until stop.
func (a *Agent) reportProgress(p *writeProgress, stop <-chan struct{}) {
	t := time.NewTicker(a.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		s := p.snapshot()
		pct := "?"
		if s.Total > 0 {
			pct = fmt.Sprintf("%d", min(100, s.Written*100/s.Total))
		}
		a.Console("%s %s%% %.1f MB/s", ConsoleWrite, pct, float64(s.Rate)/1e6)
		a.forceHeartbeat()
	}
}
