package ramdisk

import (
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
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lightsout/lightsout/sim/ramdisk/internal/ptable"
)

// newHash returns the hash for an IPA os_hash_algo name.
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

// expectedChecksum picks the algorithm and value the way IPA does:
// os_hash_algo/os_hash_value first, else checksum (its length tells md5,
// sha1, sha256 or sha512).
func expectedChecksum(info map[string]any) (algo, value string, err error) {
	algo, _ = info["os_hash_algo"].(string)
	value, _ = info["os_hash_value"].(string)
	if algo != "" && value != "" {
		value = strings.ToLower(strings.TrimSpace(value))
		if _, err := hex.DecodeString(value); err != nil {
			return "", "", fmt.Errorf("os_hash_value %q is not a hex digest", value)
		}
		return strings.ToLower(algo), value, nil
	}
	value, _ = info["checksum"].(string)
	value = strings.ToLower(strings.TrimSpace(value))
	if i := strings.Index(value, ":"); i > 0 { // "sha256:<hex>"
		algo, value = value[:i], value[i+1:]
		if _, err := hex.DecodeString(value); err != nil {
			return "", "", fmt.Errorf("checksum %q is not a hex digest", value)
		}
		return algo, value, nil
	}
	if _, err := hex.DecodeString(value); err != nil {
		return "", "", fmt.Errorf("checksum %q is not a hex digest", value)
	}
	switch len(value) {
	case 32:
		return "md5", value, nil
	case 40:
		return "sha1", value, nil
	case 64:
		return "sha256", value, nil
	case 128:
		return "sha512", value, nil
	}
	return "", "", fmt.Errorf("checksum %q is not an md5, sha1, sha256 or sha512 hex digest", value)
}

func downloadError(id, u string, start time.Time, format string, args ...any) *restError {
	return &restError{Type: "ImageDownloadError", Code: 500, Message: "Error downloading image",
		Details: fmt.Sprintf("Download of image %s failed: URL: %s; time: %.1f seconds. Error: %s",
			id, stripQuery(u), time.Since(start).Seconds(), fmt.Sprintf(format, args...))}
}

// writeImage downloads image_info.urls[0], verifies its checksum and writes
// it to the virtual disk (raw images streamed in place, qcow2 converted with
// qemu-img), as IPA's standby.prepare_image does.
func (a *Agent) writeImage(ctx context.Context, info map[string]any) *restError {
	id, _ := info["id"].(string)
	u := info["urls"].([]any)[0].(string)
	start := time.Now()
	algo, want, err := expectedChecksum(info)
	if err != nil {
		return &restError{Type: "ImageChecksumError", Code: 500, Message: "Error verifying image checksum", Details: err.Error()}
	}
	h, err := newHash(algo)
	if err != nil {
		return &restError{Type: "ImageChecksumError", Code: 500, Message: "Error verifying image checksum", Details: err.Error()}
	}
	if a.cfg.Failures.DownloadNotFound {
		return downloadError(id, u, start, "Received status code 404 from %s, expected 200. Response body: injected failure", stripQuery(u))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return downloadError(id, u, start, "invalid URL")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return downloadError(id, u, start, "%v", unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return downloadError(id, u, start, "Received status code %d from %s, expected 200. Response body: %s",
			resp.StatusCode, stripQuery(u), strings.TrimSpace(string(body)))
	}
	diskFormat, _ := info["disk_format"].(string)
	src := io.TeeReader(resp.Body, h)
	var werr error
	if strings.EqualFold(diskFormat, "qcow2") {
		werr = a.writeQcow2(ctx, src, id)
	} else {
		werr = writeRaw(a.cfg.DiskPath, src)
	}
	if werr != nil {
		if ctx.Err() != nil {
			return downloadError(id, u, start, "%v", ctx.Err())
		}
		var re *restError
		if errors.As(werr, &re) {
			return re
		}
		return &restError{Type: "ImageWriteError", Code: 500, Message: "Error writing image to device",
			Details: fmt.Sprintf("Writing image to device %s failed: %v", a.cfg.DiskPath, werr)}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if a.cfg.Failures.ChecksumMismatch {
		got = flipFirst(got) // as if the bytes were corrupted in transit
	}
	if got != want {
		return &restError{Type: "ImageChecksumError", Code: 500, Message: "Error verifying image checksum",
			Details: fmt.Sprintf("Image failed to verify against checksum. location: %s; image ID: %s; image checksum: %s; verification checksum: %s",
				stripQuery(u), id, got, want)}
	}
	return nil
}

// writeRaw streams src over the start of the disk file without changing
// its size (like dd to a block device); it fails when src is larger than an
// existing, non-empty disk.
func writeRaw(diskPath string, src io.Reader) error {
	f, err := os.OpenFile(diskPath, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	var w io.Writer = f
	if size := st.Size(); size > 0 {
		w = &limitedWriter{w: f, left: size}
	}
	_, err = io.CopyBuffer(w, src, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// limitedWriter refuses writes past the disk's end.
type limitedWriter struct {
	w    io.Writer
	left int64
}

var errDiskFull = errors.New("image is larger than the disk")

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, _ := l.w.Write(p[:l.left])
		l.left -= int64(n)
		return n, errDiskFull
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// writeQcow2 saves src to a temporary file then converts it onto the disk
// with `qemu-img convert -f qcow2 -O raw -n` (the disk keeps its size).
func (a *Agent) writeQcow2(ctx context.Context, src io.Reader, id string) error {
	tmp, err := os.CreateTemp(a.cfg.WorkDir, "ramdisk-image-*.qcow2")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.CopyBuffer(tmp, src, make([]byte, 1<<20)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if _, err := os.Stat(a.cfg.DiskPath); errors.Is(err, os.ErrNotExist) {
		out, err := exec.CommandContext(ctx, a.cfg.QemuImg, "convert", "-f", "qcow2", "-O", "raw", tmp.Name(), a.cfg.DiskPath).CombinedOutput()
		if err != nil {
			return fmt.Errorf("qemu-img convert of image %s: %v: %s", id, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	out, err := exec.CommandContext(ctx, a.cfg.QemuImg, "convert", "-n", "-f", "qcow2", "-O", "raw", tmp.Name(), a.cfg.DiskPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img convert of image %s: %v: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// eraseDisk zeroes the whole disk, keeping its size: the file is truncated
// to zero and extended back, so every block reads as zero (and the file
// stays sparse).
func eraseDisk(ctx context.Context, diskPath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Stat(diskPath)
	if err != nil {
		return err
	}
	if err := os.Truncate(diskPath, 0); err != nil {
		return err
	}
	return os.Truncate(diskPath, st.Size())
}

// eraseMetadata zeroes the first and last MiB of the disk (partition
// tables, filesystem signatures and the GPT backup header).
func eraseMetadata(diskPath string) error {
	f, err := os.OpenFile(diskPath, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := st.Size()
	const span = 1 << 20
	zero := make([]byte, min(span, size))
	_, err = f.WriteAt(zero, 0)
	if err == nil && size > span {
		_, err = f.WriteAt(zero, size-int64(len(zero)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// partitionUUIDs answers standby.get_partition_uuids for a whole-disk
// image (see ptable.Read).
func partitionUUIDs(diskPath string) (map[string]any, error) {
	f, err := os.Open(diskPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ptable.Read(f, filepath.Base(diskPath)), nil
}

// flipFirst changes the first hex digit of a digest.
func flipFirst(d string) string {
	if d == "" {
		return "0"
	}
	if d[0] == '0' {
		return "1" + d[1:]
	}
	return "0" + d[1:]
}
