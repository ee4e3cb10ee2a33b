// Package qcow2 converts a qcow2 image to raw while reading it once, front
// to back, from a stream (an HTTP body): no temporary copy and no seeking.
//
// It handles the images qemu-img writes (`qemu-img convert -O qcow2`,
// `qemu-img create` + guest writes): the header, the active L1 table, the
// L2 tables and the data clusters they map, in any order where each table
// comes before the clusters it maps in the file. Unallocated and zero
// clusters become holes the caller zeroes afterwards ([Result.Holes]), so a
// caller can first check the stream's checksum. zlib-compressed clusters
// (`qemu-img convert -c`, cloud images) are inflated, including those qemu
// packs just before the L2 table mapping them (a small history window).
// zstd compression, encryption, backing files, external data files and
// extended L2 entries are refused with an error naming the feature and
// what to do instead.
package qcow2

import (
	"bufio"
	"bytes"
	"compress/flate"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Magic is the first four bytes of a qcow2 image ("QFI\xfb").
var Magic = []byte{'Q', 'F', 'I', 0xfb}

// Limits on what a header may ask for (qemu's own limits).
const (
	minClusterBits = 9
	maxClusterBits = 21
	maxL1Bytes     = 32 << 20 // QCOW_MAX_L1_SIZE
	headerV2Len    = 72
	headerV3Len    = 104
)

// Incompatible feature bits (qcow2 v3).
const (
	incompatDirty        = 1 << 0
	incompatCorrupt      = 1 << 1
	incompatExternalData = 1 << 2
	incompatCompression  = 1 << 3
	incompatExtendedL2   = 1 << 4
)

// L1/L2 entry bits.
const (
	offsetMask   = 0x00fffffffffffe00 // bits 9-55
	l2Compressed = 1 << 62
	l2ZeroFlag   = 1 << 0
)

// Header is the part of a qcow2 header the converter uses.
type Header struct {
	Version            uint32
	BackingFileOffset  uint64
	ClusterBits        uint32
	Size               uint64 // virtual disk size in bytes
	CryptMethod        uint32
	L1Size             uint32 // entries
	L1TableOffset      uint64
	IncompatFeatures   uint64
	HeaderLength       uint32
	ClusterSize        int64
	L2Entries          int64
	SnapshotCount      uint32
	RefcountTableClust uint32
	// CompressionType of compressed clusters: 0 zlib (deflate), 1 zstd.
	CompressionType uint8
}

// ErrNotQcow2 is returned when the stream does not start with the qcow2 magic.
var ErrNotQcow2 = errors.New("not a qcow2 image (no QFI\\xfb magic)")

// ParseHeader decodes and validates a qcow2 header from the first bytes of
// an image (at least 104 bytes for version 3, 72 for version 2).
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < 4 || string(b[:4]) != string(Magic) {
		return nil, ErrNotQcow2
	}
	if len(b) < headerV2Len {
		return nil, fmt.Errorf("qcow2 header: truncated (%d bytes)", len(b))
	}
	be := binary.BigEndian
	h := &Header{
		Version:            be.Uint32(b[4:]),
		BackingFileOffset:  be.Uint64(b[8:]),
		ClusterBits:        be.Uint32(b[20:]),
		Size:               be.Uint64(b[24:]),
		CryptMethod:        be.Uint32(b[32:]),
		L1Size:             be.Uint32(b[36:]),
		L1TableOffset:      be.Uint64(b[40:]),
		RefcountTableClust: be.Uint32(b[56:]),
		SnapshotCount:      be.Uint32(b[60:]),
		HeaderLength:       headerV2Len,
	}
	switch h.Version {
	case 2:
	case 3:
		if len(b) < headerV3Len {
			return nil, fmt.Errorf("qcow2 header: truncated version 3 header (%d bytes)", len(b))
		}
		h.IncompatFeatures = be.Uint64(b[72:])
		h.HeaderLength = be.Uint32(b[100:])
		if h.HeaderLength < headerV3Len {
			return nil, fmt.Errorf("qcow2 header: header_length %d is below 104", h.HeaderLength)
		}
		if h.HeaderLength > headerV3Len && len(b) > headerV3Len {
			h.CompressionType = b[104]
		}
		if h.IncompatFeatures&incompatCompression != 0 && h.CompressionType == 0 && (h.HeaderLength <= headerV3Len || len(b) <= headerV3Len) {
			return nil, errors.New("qcow2 header: compression type bit set but the header does not say which")
		}
	default:
		return nil, fmt.Errorf("qcow2 header: version %d is not supported (2 or 3)", h.Version)
	}
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return nil, fmt.Errorf("qcow2 header: cluster_bits %d outside %d-%d", h.ClusterBits, minClusterBits, maxClusterBits)
	}
	h.ClusterSize = 1 << h.ClusterBits
	h.L2Entries = h.ClusterSize / 8
	if h.BackingFileOffset != 0 {
		return nil, errors.New("qcow2 image has a backing file: flatten it first (qemu-img convert -O qcow2 in.qcow2 out.qcow2)")
	}
	if h.CryptMethod != 0 {
		return nil, fmt.Errorf("qcow2 image is encrypted (crypt_method %d): decrypt it first with qemu-img convert", h.CryptMethod)
	}
	f := h.IncompatFeatures
	switch {
	case f&incompatCorrupt != 0:
		return nil, errors.New("qcow2 image is marked corrupt: repair it with qemu-img check -r all")
	case f&incompatExternalData != 0:
		return nil, errors.New("qcow2 image uses an external data file: convert it to a self-contained image with qemu-img convert")
	case f&incompatExtendedL2 != 0:
		return nil, errors.New("qcow2 image uses extended L2 entries (subclusters): convert it with qemu-img convert -O qcow2 -o extended_l2=off")
	case f&^(incompatDirty|incompatCorrupt|incompatExternalData|incompatCompression|incompatExtendedL2) != 0:
		return nil, fmt.Errorf("qcow2 image has unknown incompatible features %#x", f)
	}
	if uint64(h.L1Size)*8 > maxL1Bytes {
		return nil, fmt.Errorf("qcow2 header: L1 table of %d entries exceeds %d MiB", h.L1Size, maxL1Bytes>>20)
	}
	// the L1 table must cover the virtual size
	perL1 := uint64(h.L2Entries) * uint64(h.ClusterSize)
	if need := (h.Size + perL1 - 1) / perL1; need > uint64(h.L1Size) {
		return nil, fmt.Errorf("qcow2 header: L1 table of %d entries cannot map a %d-byte disk", h.L1Size, h.Size)
	}
	if h.L1Size > 0 && (h.L1TableOffset == 0 || h.L1TableOffset%uint64(h.ClusterSize) != 0 || h.L1TableOffset > 1<<56) {
		return nil, fmt.Errorf("qcow2 header: L1 table offset %#x is not cluster aligned", h.L1TableOffset)
	}
	return h, nil
}

// Extent is a byte range of the virtual disk.
type Extent struct {
	Offset, Length int64
}

// Result describes a finished conversion.
type Result struct {
	Header *Header
	// Written is the number of data bytes written to the target.
	Written int64
	// Holes are the ranges of the virtual disk (within Header.Size) that
	// were not written: unallocated or zero clusters. A target that does
	// not already read as zeros there must be zeroed by the caller.
	Holes []Extent
	// Read is the number of bytes consumed from the stream (all of it).
	Read int64
}

// Options tunes Convert.
type Options struct {
	// MaxSize refuses images whose virtual size exceeds it (the disk
	// size); 0 means no limit.
	MaxSize int64
	// BatchBytes bounds one write to the target (default 4 MiB).
	BatchBytes int
}

// kinds of wanted file clusters
type wantKind uint8

const (
	wantL1 wantKind = iota + 1
	wantL2
	wantData
	wantCompressed
)

type want struct {
	kind   wantKind
	index  int64   // L1: unused; L2: L1 index
	guest  []int64 // data: guest offsets (several when shared)
	length int64   // compressed: the descriptor's length (an upper bound)
}

// offsetHeap is a min-heap of file offsets.
type offsetHeap []int64

func (h offsetHeap) Len() int           { return len(h) }
func (h offsetHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h offsetHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *offsetHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *offsetHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// converter is one conversion in progress.
type converter struct {
	ctx    context.Context
	in     *bufio.Reader
	pos    int64
	w      io.WriterAt
	h      *Header
	opts   Options
	wanted map[int64]*want
	order  offsetHeap
	done   []Extent // written guest extents, merged when contiguous
	res    Result
	buf    []byte
	// inflater decompresses zlib-compressed clusters (reused)
	inflater io.ReadCloser
	// hist keeps the last bytes read once the image has compressed
	// clusters: qemu packs compressed clusters into the tail of a host
	// cluster that may precede the L2 table mapping them.
	keepHist bool
	hist     []byte
	behind   []behindItem
}

// behindItem is a compressed cluster found behind the read position.
type behindItem struct {
	off int64
	wt  *want
}

// ErrNotStreamable is wrapped by errors about images whose tables come
// after the clusters they map (the stream cannot go back).
var ErrNotStreamable = errors.New("qcow2 image is not in streaming order")

// Convert reads a qcow2 image from r (front to back, once, to its end) and
// writes the guest data at its virtual offsets to w. It returns the holes
// the caller must zero. Nothing is written before the header is validated
// (and, with MaxSize, the virtual size checked).
func Convert(ctx context.Context, r io.Reader, w io.WriterAt, opts Options) (*Result, error) {
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	c := &converter{ctx: ctx, in: bufio.NewReaderSize(r, 1<<20), w: w, opts: opts, wanted: map[int64]*want{}}
	if err := c.run(); err != nil {
		return &c.res, err
	}
	return &c.res, nil
}

func (c *converter) histSize() int {
	if c.h == nil {
		return 0
	}
	return int(2*c.h.ClusterSize) + 64<<10
}

// record appends b to the history window.
func (c *converter) record(b []byte) {
	if !c.keepHist {
		return
	}
	hs := c.histSize()
	if len(b) >= hs {
		c.hist = append(c.hist[:0], b[len(b)-hs:]...)
		return
	}
	if drop := len(c.hist) + len(b) - hs; drop > 0 {
		c.hist = append(c.hist[:0], c.hist[drop:]...)
	}
	c.hist = append(c.hist, b...)
}

// fromHist returns the bytes [off, off+n) from the history, cut at the
// read position.
func (c *converter) fromHist(off, n int64) ([]byte, bool) {
	start := c.pos - int64(len(c.hist))
	if off < start || off >= c.pos {
		return nil, false
	}
	end := min(off+n, c.pos)
	return c.hist[off-start : end-start], true
}

func (c *converter) read(p []byte) error {
	n, err := io.ReadFull(c.in, p)
	c.record(p[:n])
	c.pos += int64(n)
	c.res.Read = c.pos
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("qcow2 image ends at byte %d, inside a table or cluster it maps (truncated download?)", c.pos)
		}
		return err
	}
	return nil
}

func (c *converter) skip(n int64) error {
	if c.keepHist && n > 0 {
		buf := make([]byte, min(n, 1<<20))
		for n > 0 {
			k := min(n, int64(len(buf)))
			if err := c.read(buf[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		k, err := c.in.Discard(int(min(n, 1<<30)))
		c.pos += int64(k)
		c.res.Read = c.pos
		n -= int64(k)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("qcow2 image ends at byte %d, before a table or cluster it maps at %d (truncated download?)", c.pos, c.pos+n)
			}
			return err
		}
	}
	return nil
}

func (c *converter) add(off int64, wt *want) error {
	if off < c.pos && wt.kind == wantCompressed {
		if _, ok := c.fromHist(off, 1); ok {
			c.behind = append(c.behind, behindItem{off, wt})
			return nil
		}
	}
	if off < c.pos {
		return fmt.Errorf("%w: a table maps file offset %#x, already passed at %#x; rewrite it with qemu-img convert -O qcow2 (or use a raw image)", ErrNotStreamable, off, c.pos)
	}
	if old, ok := c.wanted[off]; ok {
		if old.kind == wt.kind && (wt.kind == wantData || wt.kind == wantCompressed) {
			old.guest = append(old.guest, wt.guest...)
			return nil
		}
		return fmt.Errorf("qcow2 image maps file offset %#x twice as different structures (corrupt image)", off)
	}
	c.wanted[off] = wt
	heap.Push(&c.order, off)
	return nil
}

func (c *converter) run() error {
	head := make([]byte, 512)
	if err := c.read(head[:headerV2Len]); err != nil {
		if c.pos < 4 || string(head[:4]) != string(Magic) {
			return ErrNotQcow2
		}
		return err
	}
	if string(head[:4]) != string(Magic) {
		return ErrNotQcow2
	}
	if binary.BigEndian.Uint32(head[4:]) >= 3 {
		if err := c.read(head[headerV2Len:headerV3Len]); err != nil {
			return err
		}
		// the compression type byte follows when header_length says so
		if hl := binary.BigEndian.Uint32(head[100:]); hl > headerV3Len {
			if err := c.read(head[headerV3Len : headerV3Len+8]); err != nil {
				return err
			}
		}
	}
	h, err := ParseHeader(head[:c.pos])
	if err != nil {
		return err
	}
	c.h, c.res.Header = h, h
	if c.opts.MaxSize > 0 && h.Size > uint64(c.opts.MaxSize) {
		return fmt.Errorf("qcow2 image's virtual size %d bytes exceeds the disk (%d bytes): pick a larger disk with root device hints", h.Size, c.opts.MaxSize)
	}
	if h.L1Size > 0 {
		if err := c.add(int64(h.L1TableOffset), &want{kind: wantL1}); err != nil {
			return err
		}
	}
	for c.order.Len() > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		off := heap.Pop(&c.order).(int64)
		wt := c.wanted[off]
		delete(c.wanted, off)
		if err := c.skip(off - c.pos); err != nil {
			return err
		}
		switch wt.kind {
		case wantL1:
			if err := c.readL1(); err != nil {
				return err
			}
		case wantL2:
			if err := c.readL2(wt.index); err != nil {
				return err
			}
		case wantData:
			if err := c.readData(off, wt); err != nil {
				return err
			}
		case wantCompressed:
			if err := c.readCompressed(off, wt); err != nil {
				return err
			}
		}
	}
	// drain the rest of the stream (refcounts, snapshots): the caller's
	// checksum covers every byte
	n, err := io.Copy(io.Discard, c.in)
	c.pos += n
	c.res.Read = c.pos
	if err != nil {
		return fmt.Errorf("qcow2 image: reading the end of the stream: %w", err)
	}
	c.res.Holes = holes(c.done, int64(h.Size))
	return nil
}

func (c *converter) readL1() error {
	b := make([]byte, int(c.h.L1Size)*8)
	if err := c.read(b); err != nil {
		return err
	}
	for i := range int64(c.h.L1Size) {
		e := binary.BigEndian.Uint64(b[i*8:])
		l2 := int64(e & offsetMask)
		if l2 == 0 {
			continue
		}
		if l2%c.h.ClusterSize != 0 {
			return fmt.Errorf("qcow2 L1 entry %d: L2 table offset %#x is not cluster aligned (corrupt image)", i, l2)
		}
		if i*c.h.L2Entries*c.h.ClusterSize >= int64(c.h.Size) {
			continue // beyond the virtual size
		}
		if err := c.add(l2, &want{kind: wantL2, index: i}); err != nil {
			return err
		}
	}
	return nil
}

// L2Entry is one decoded L2 table entry.
type L2Entry struct {
	// Offset is the host offset of the data: a cluster-aligned data
	// cluster, or the first byte of a compressed cluster; 0 for
	// unallocated and zero clusters (read as zeros).
	Offset int64
	// Compressed clusters are CompressedLen bytes at most, starting at
	// Offset (the stream may end earlier: the next cluster follows).
	Compressed    bool
	CompressedLen int64
}

// ParseL2 decodes one L2 table (a cluster of 8-byte entries) of an image
// with 2^clusterBits-byte clusters.
func ParseL2(b []byte, clusterBits uint32) ([]L2Entry, error) {
	if clusterBits < minClusterBits || clusterBits > maxClusterBits {
		return nil, fmt.Errorf("qcow2: cluster_bits %d outside %d-%d", clusterBits, minClusterBits, maxClusterBits)
	}
	clusterSize := int64(1) << clusterBits
	out := make([]L2Entry, len(b)/8)
	for j := range out {
		e := binary.BigEndian.Uint64(b[j*8:])
		if e&l2Compressed != 0 {
			x := 62 - (clusterBits - 8)
			off := int64(e & (1<<x - 1))
			sectors := int64(e>>x) & (1<<(clusterBits-8) - 1)
			n := (sectors+1)*512 - off&511
			if off == 0 || n <= 0 {
				return nil, fmt.Errorf("qcow2 L2 entry %d: bad compressed cluster descriptor %#x (corrupt image)", j, e)
			}
			out[j] = L2Entry{Offset: off, Compressed: true, CompressedLen: n}
			continue
		}
		if e&l2ZeroFlag != 0 {
			continue // reads as zeros, whatever the offset
		}
		off := int64(e & offsetMask)
		if off%clusterSize != 0 {
			return nil, fmt.Errorf("qcow2 L2 entry %d: data offset %#x is not cluster aligned (corrupt image)", j, off)
		}
		out[j] = L2Entry{Offset: off}
	}
	return out, nil
}

func (c *converter) readL2(l1Index int64) error {
	b := c.scratch(int(c.h.ClusterSize))
	if err := c.read(b); err != nil {
		return err
	}
	entries, err := ParseL2(b, c.h.ClusterBits)
	if err != nil {
		return err
	}
	base := l1Index * c.h.L2Entries * c.h.ClusterSize
	for _, e := range entries {
		if e.Compressed && !c.keepHist {
			c.keepHist = true
			c.record(b) // the L2 table itself: compressed data may share its predecessor
		}
	}
	for j, e := range entries {
		if e.Offset == 0 {
			continue
		}
		guest := base + int64(j)*c.h.ClusterSize
		if guest >= int64(c.h.Size) {
			break
		}
		wt := &want{kind: wantData, guest: []int64{guest}}
		if e.Compressed {
			if c.h.CompressionType != 0 {
				return fmt.Errorf("qcow2 image has zstd-compressed clusters, which are not supported: recompress with zlib (qemu-img convert -c -O qcow2 -o compression_type=zlib) or use an uncompressed image")
			}
			wt = &want{kind: wantCompressed, guest: []int64{guest}, length: e.CompressedLen}
		}
		if err := c.add(e.Offset, wt); err != nil {
			return err
		}
	}
	behind := c.behind
	c.behind = nil
	for _, bi := range behind {
		data, _ := c.fromHist(bi.off, bi.wt.length)
		if err := c.inflate(bi.off, bi.wt, data); err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) scratch(n int) []byte {
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	return c.buf[:n]
}

// readData reads the data cluster at off and, while the next wanted
// clusters follow it in the file and on the disk, those too, writing them
// in one batch.
func (c *converter) readData(off int64, first *want) error {
	cs := c.h.ClusterSize
	batch := []*want{first}
	maxN := max(1, int64(c.opts.BatchBytes)/cs)
	for int64(len(batch)) < maxN && c.order.Len() > 0 {
		next := c.order[0]
		nw := c.wanted[next]
		last := batch[len(batch)-1]
		if next != off+int64(len(batch))*cs || nw.kind != wantData || len(nw.guest) != 1 || len(last.guest) != 1 || nw.guest[0] != last.guest[0]+cs {
			break
		}
		heap.Pop(&c.order)
		delete(c.wanted, next)
		batch = append(batch, nw)
	}
	b := c.scratch(len(batch) * int(cs))
	if err := c.read(b); err != nil {
		return err
	}
	size := int64(c.h.Size)
	if len(batch) > 1 || len(first.guest) == 1 {
		g := first.guest[0]
		n := min(int64(len(b)), size-g)
		if err := c.write(b[:n], g); err != nil {
			return err
		}
		return nil
	}
	for _, g := range first.guest {
		n := min(cs, size-g)
		if err := c.write(b[:n], g); err != nil {
			return err
		}
	}
	return nil
}

// readCompressed inflates one zlib (raw deflate) compressed cluster. Its
// bytes end where the next wanted structure starts, or at the descriptor's
// sector-rounded length.
func (c *converter) readCompressed(off int64, wt *want) error {
	n := wt.length
	if c.order.Len() > 0 && c.order[0] < off+n {
		n = c.order[0] - off
	}
	if n <= 0 || n > 2*c.h.ClusterSize+512 {
		return fmt.Errorf("qcow2 compressed cluster at %#x: bad length %d (corrupt image)", off, n)
	}
	in := make([]byte, n)
	if err := c.read(in); err != nil {
		return err
	}
	return c.inflate(off, wt, in)
}

// inflate decompresses one cluster from in and writes it.
func (c *converter) inflate(off int64, wt *want, in []byte) error {
	if c.inflater == nil {
		c.inflater = flate.NewReader(bytes.NewReader(in))
	} else if err := c.inflater.(flate.Resetter).Reset(bytes.NewReader(in), nil); err != nil {
		return err
	}
	out := make([]byte, c.h.ClusterSize)
	size := int64(c.h.Size)
	// shared compressed clusters: inflated once for the first disk offset,
	// copied to the others
	if len(wt.guest) > 0 {
		g := wt.guest[0]
		want := min(c.h.ClusterSize, size-g)
		if _, err := io.ReadFull(c.inflater, out[:want]); err != nil {
			return fmt.Errorf("qcow2 compressed cluster at %#x for disk offset %d: %v (corrupt image)", off, g, err)
		}
		if err := c.write(out[:want], g); err != nil {
			return err
		}
	}
	for _, g := range wt.guest[min(1, len(wt.guest)):] {
		if err := c.write(out[:min(c.h.ClusterSize, size-g)], g); err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) write(b []byte, guest int64) error {
	if _, err := c.w.WriteAt(b, guest); err != nil {
		return fmt.Errorf("writing %d bytes at disk offset %d: %w", len(b), guest, err)
	}
	c.res.Written += int64(len(b))
	if n := len(c.done); n > 0 && c.done[n-1].Offset+c.done[n-1].Length == guest {
		c.done[n-1].Length += int64(len(b))
	} else {
		c.done = append(c.done, Extent{guest, int64(len(b))})
	}
	return nil
}

// holes returns the complement of the written extents within [0, size).
func holes(done []Extent, size int64) []Extent {
	slices.SortFunc(done, func(a, b Extent) int {
		switch {
		case a.Offset < b.Offset:
			return -1
		case a.Offset > b.Offset:
			return 1
		}
		return 0
	})
	var out []Extent
	at := int64(0)
	for _, e := range done {
		if e.Offset > at {
			out = append(out, Extent{at, e.Offset - at})
		}
		at = max(at, e.Offset+e.Length)
	}
	if at < size {
		out = append(out, Extent{at, size - at})
	}
	return out
}
