// Package swift publishes boot media to OpenStack Swift: authentication
// (v1 tempauth, Keystone v2/v3) on ncw/swift/v2, uploads with X-Delete-After
// (SLO segments above a threshold), Swift temp URLs signed with
// HMAC-SHA256 (SHA1/SHA512 selectable; ncw/swift only signs SHA1), deletes
// and Glance-in-Swift temp URLs. It also provides the `swift` Lua module.
package swift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/lightsout/lightsout/bindings/swift/tempurl"
	"github.com/lightsout/lightsout/runtime/module"
)

// Client is a Swift client bound to one account. It is safe for concurrent
// use; the temp-URL key and created containers are cached.
type Client struct {
	cfg  Config
	conn *ncw.Connection

	mu      sync.Mutex
	key     string
	ensured map[string]bool
}

// New returns a client for cfg. It does not talk to the network.
func New(cfg Config) (*Client, error) {
	if cfg.AuthURL == "" {
		return nil, module.Errorf(module.CodeInvalid, "", "no Swift endpoint: set [swift] auth_url (or [keystone_authtoken] auth_url)")
	}
	if _, err := url.ParseRequestURI(cfg.AuthURL); err != nil {
		return nil, module.Errorf(module.CodeInvalid, "", "[swift] auth_url %q is not a URL", cfg.AuthURL)
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, module.Errorf(module.CodeInvalid, "", "[swift] username and password are required")
	}
	if cfg.Container == "" {
		cfg.Container = DefaultContainer
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	if cfg.SegmentWorkers <= 0 {
		cfg.SegmentWorkers = DefaultSegmentWorkers
	}
	if cfg.TempURLDigest == "" {
		cfg.TempURLDigest = tempurl.SHA256
	}
	conn := &ncw.Connection{
		UserName:    cfg.Username,
		ApiKey:      cfg.Password,
		AuthUrl:     cfg.AuthURL,
		AuthVersion: cfg.AuthVersion,
		Tenant:      cfg.ProjectName,
		Domain:      cfg.UserDomainName,
		Region:      cfg.RegionName,
		Retries:     cfg.Retries,
		UserAgent:   "lightsout",
		Timeout:     5 * time.Minute,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 16,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      64 << 10,
		},
	}
	if cfg.ProjectDomainName != "" && cfg.ProjectDomainName != cfg.UserDomainName {
		conn.TenantDomain = cfg.ProjectDomainName
	}
	if cfg.AuthVersion == 3 && conn.Domain == "" {
		conn.Domain = "Default"
	}
	return &Client{cfg: cfg, conn: conn, ensured: map[string]bool{}}, nil
}

// Config returns the client's effective configuration.
func (c *Client) Config() Config { return c.cfg }

// wrap turns an ncw/transport error into a *module.Error with a code.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var me *module.Error
	if errors.As(err, &me) {
		return err
	}
	code := module.CodeError
	var se *ncw.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = module.CodeTimeout
	case errors.Is(err, context.Canceled):
		code = module.CodeCancelled
	case errors.Is(err, ncw.ObjectNotFound), errors.Is(err, ncw.ContainerNotFound):
		code = module.CodeNotFound
	case errors.Is(err, ncw.AuthorizationFailed):
		code = module.CodeLoginFailed
	case errors.As(err, &se) && se.StatusCode >= 500:
		code = module.CodeTransient
	}
	return &module.Error{Code: code, Operation: "swift " + op, Message: err.Error(), Err: err}
}

// Authenticate logs in (if not yet) and returns the storage URL.
func (c *Client) Authenticate(ctx context.Context) (string, error) {
	if !c.conn.Authenticated() {
		if err := c.conn.Authenticate(ctx); err != nil {
			if errors.Is(err, ncw.AuthorizationFailed) || errors.Is(err, ncw.Forbidden) {
				return "", &module.Error{Code: module.CodeLoginFailed, Operation: "swift auth",
					Message: fmt.Sprintf("Swift refused the credentials of user %q at %s (auth v%d)", c.cfg.Username, c.cfg.AuthURL, c.conn.AuthVersion), Err: err}
			}
			return "", wrap("auth", err)
		}
	}
	su, err := c.conn.GetStorageUrl(ctx)
	return su, wrap("auth", err)
}

// EnsureContainer creates container if this client has not done so yet
// (PUT is idempotent in Swift).
func (c *Client) EnsureContainer(ctx context.Context, container string) error {
	c.mu.Lock()
	done := c.ensured[container]
	c.mu.Unlock()
	if done {
		return nil
	}
	if _, err := c.Authenticate(ctx); err != nil {
		return err
	}
	if err := c.conn.ContainerCreate(ctx, container, nil); err != nil {
		return wrap("put container "+container, err)
	}
	c.mu.Lock()
	c.ensured[container] = true
	c.mu.Unlock()
	return nil
}

// UploadOptions tune one upload.
type UploadOptions struct {
	// DeleteAfter sets X-Delete-After (whole seconds); 0 keeps the object.
	DeleteAfter time.Duration
	// ContentType; guessed from the name when empty.
	ContentType string
	// Headers are extra request headers (e.g. X-Object-Meta-*).
	Headers map[string]string
}

func (o UploadOptions) headers() ncw.Headers {
	h := ncw.Headers{}
	for k, v := range o.Headers {
		h[k] = v
	}
	if o.DeleteAfter > 0 {
		secs := int64((o.DeleteAfter + time.Second - 1) / time.Second)
		h["X-Delete-After"] = strconv.FormatInt(secs, 10)
	}
	return h
}

// Result describes an uploaded object.
type Result struct {
	Container, Object string
	Bytes             int64
	Segments          int // 0 for a plain object
}

// UploadFile uploads the file at path as container/object; files larger
// than the threshold become SLOs whose segments are uploaded in parallel.
func (c *Client) UploadFile(ctx context.Context, container, object, path string, o UploadOptions) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, &module.Error{Code: module.CodeNotFound, Operation: "swift upload", Message: err.Error(), Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Result{}, wrap("upload", err)
	}
	if !st.Mode().IsRegular() {
		return Result{}, module.Errorf(module.CodeInvalid, "swift upload", "%s is not a regular file", path)
	}
	return c.upload(ctx, container, object, f, st.Size(), o)
}

// Upload uploads size bytes from r (size < 0: unknown, streamed; an
// *os.File's size is found with Stat). Unknown-size streams up to 16 MiB go
// in one PUT, larger ones become SLOs of SegmentSize segments.
func (c *Client) Upload(ctx context.Context, container, object string, r io.Reader, size int64, o UploadOptions) (Result, error) {
	if f, ok := r.(*os.File); ok && size < 0 {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				size = st.Size() - off
			}
		}
	}
	return c.upload(ctx, container, object, r, size, o)
}

func validName(op, container, object string) error {
	if container == "" || strings.Contains(container, "/") {
		return module.Errorf(module.CodeInvalid, op, "container %q must be non-empty and contain no '/'", container)
	}
	if object == "" || len(object) > 1024 {
		return module.Errorf(module.CodeInvalid, op, "object name must be 1..1024 bytes, got %d", len(object))
	}
	return nil
}

func (c *Client) upload(ctx context.Context, container, object string, r io.Reader, size int64, o UploadOptions) (Result, error) {
	if err := validName("swift upload", container, object); err != nil {
		return Result{}, err
	}
	if err := c.EnsureContainer(ctx, container); err != nil {
		return Result{}, err
	}
	// Segments of an SLO being replaced are removed after the new upload.
	oldSegs := c.existingSegments(ctx, container, object)
	var res Result
	var err error
	switch {
	case size >= 0 && size <= c.cfg.Threshold:
		res, err = c.putSimple(ctx, container, object, r, size, o)
	case size > c.cfg.Threshold:
		ra, ok := r.(io.ReaderAt)
		if ok {
			res, err = c.putSLOParallel(ctx, container, object, ra, size, o)
		} else {
			res, err = c.putSLOStream(ctx, container, object, r, nil, o)
		}
	default:
		const small = 16 << 20
		buf := make([]byte, small)
		n, rerr := io.ReadFull(r, buf)
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			res, err = c.putSimple(ctx, container, object, bytes.NewReader(buf[:n]), int64(n), o)
		case rerr != nil:
			err = wrap("upload read", rerr)
		default:
			res, err = c.putSLOStream(ctx, container, object, r, buf[:n], o)
		}
	}
	if err != nil {
		return res, err
	}
	c.deleteSegments(ctx, oldSegs)
	return res, nil
}

func (c *Client) putSimple(ctx context.Context, container, object string, r io.Reader, size int64, o UploadOptions) (Result, error) {
	h := o.headers()
	if size >= 0 {
		h["Content-Length"] = strconv.FormatInt(size, 10)
		if ra, ok := r.(io.ReaderAt); ok {
			// a SectionReader is seekable, so ncw can replay it after a re-auth
			r = io.NewSectionReader(ra, 0, size)
		}
	}
	if _, err := c.conn.ObjectPut(ctx, container, object, r, true, "", o.ContentType, h); err != nil {
		return Result{}, wrap("put object "+container+"/"+object, err)
	}
	return Result{Container: container, Object: object, Bytes: size}, nil
}

type segment struct {
	name string
	size int64
	etag string
}

func (c *Client) segmentPrefix(object string, size int64) string {
	return fmt.Sprintf("%s/slo/%d/%d/%d", object, time.Now().UnixNano(), size, c.cfg.SegmentSize)
}

func (c *Client) putSLOParallel(ctx context.Context, container, object string, ra io.ReaderAt, size int64, o UploadOptions) (Result, error) {
	segc := container + "_segments"
	if err := c.EnsureContainer(ctx, segc); err != nil {
		return Result{}, err
	}
	prefix := c.segmentPrefix(object, size)
	n := int((size + c.cfg.SegmentSize - 1) / c.cfg.SegmentSize)
	segs := make([]segment, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	workers := min(c.cfg.SegmentWorkers, n)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				off := int64(i) * c.cfg.SegmentSize
				sz := min(c.cfg.SegmentSize, size-off)
				name := fmt.Sprintf("%s/%08d", prefix, i)
				h := o.headers()
				h["Content-Length"] = strconv.FormatInt(sz, 10)
				hdr, err := c.conn.ObjectPut(ctx, segc, name, io.NewSectionReader(ra, off, sz), true, "", "application/octet-stream", h)
				if err != nil {
					errs <- wrap("put segment "+segc+"/"+name, err)
					cancel()
					continue
				}
				segs[i] = segment{name: name, size: sz, etag: hdr["Etag"]}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		c.deleteSegments(context.WithoutCancel(ctx), segPaths(segc, segs))
		return Result{}, err
	}
	if err := c.putManifest(ctx, container, object, segc, segs, o); err != nil {
		return Result{}, err
	}
	return Result{Container: container, Object: object, Bytes: size, Segments: n}, nil
}

// putSLOStream uploads r (after head) as sequential segments of unknown total size.
func (c *Client) putSLOStream(ctx context.Context, container, object string, r io.Reader, head []byte, o UploadOptions) (Result, error) {
	segc := container + "_segments"
	if err := c.EnsureContainer(ctx, segc); err != nil {
		return Result{}, err
	}
	prefix := c.segmentPrefix(object, -1)
	src := io.MultiReader(bytes.NewReader(head), r)
	var segs []segment
	var total int64
	for i := 0; ; i++ {
		// peek one byte to know whether another segment is needed
		var one [1]byte
		n, err := io.ReadFull(src, one[:])
		if n == 0 {
			if err != nil && err != io.EOF {
				c.deleteSegments(context.WithoutCancel(ctx), segPaths(segc, segs))
				return Result{}, wrap("upload read", err)
			}
			break
		}
		name := fmt.Sprintf("%s/%08d", prefix, i)
		cr := &countReader{r: io.MultiReader(bytes.NewReader(one[:]), io.LimitReader(src, c.cfg.SegmentSize-1))}
		hdr, err := c.conn.ObjectPut(ctx, segc, name, cr, true, "", "application/octet-stream", o.headers())
		if err != nil {
			c.deleteSegments(context.WithoutCancel(ctx), segPaths(segc, segs))
			return Result{}, wrap("put segment "+segc+"/"+name, err)
		}
		segs = append(segs, segment{name: name, size: cr.n, etag: hdr["Etag"]})
		total += cr.n
	}
	if err := c.putManifest(ctx, container, object, segc, segs, o); err != nil {
		return Result{}, err
	}
	return Result{Container: container, Object: object, Bytes: total, Segments: len(segs)}, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func segPaths(segc string, segs []segment) []string {
	var out []string
	for _, s := range segs {
		if s.name != "" {
			out = append(out, segc+"/"+s.name)
		}
	}
	return out
}

func (c *Client) putManifest(ctx context.Context, container, object, segc string, segs []segment, o UploadOptions) error {
	var b strings.Builder
	b.WriteString("[")
	for i, s := range segs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"path":%q,"etag":%q,"size_bytes":%d}`, "/"+segc+"/"+s.name, s.etag, s.size)
	}
	b.WriteString("]")
	su, err := c.Authenticate(ctx)
	if err != nil {
		return err
	}
	h := o.headers()
	if o.ContentType != "" {
		h["Content-Type"] = o.ContentType
	}
	_, _, err = c.conn.Call(ctx, su, ncw.RequestOpts{
		Container: container, ObjectName: object, Operation: "PUT",
		Parameters: url.Values{"multipart-manifest": {"put"}},
		Headers:    h, Body: strings.NewReader(b.String()), NoResponse: true,
	})
	if err != nil {
		c.deleteSegments(context.WithoutCancel(ctx), segPaths(segc, segs))
		return wrap("put manifest "+container+"/"+object, err)
	}
	return nil
}

// existingSegments lists the segments of an existing SLO (nil otherwise).
func (c *Client) existingSegments(ctx context.Context, container, object string) []string {
	_, h, err := c.conn.Object(ctx, container, object)
	if err != nil || !h.IsLargeObjectSLO() {
		return nil
	}
	segc, objs, err := c.conn.LargeObjectGetSegments(ctx, container, object)
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range objs {
		out = append(out, segc+"/"+o.Name)
	}
	return out
}

// deleteSegments removes container/object paths, best effort.
func (c *Client) deleteSegments(ctx context.Context, paths []string) {
	for _, p := range paths {
		cont, obj, _ := strings.Cut(p, "/")
		_ = c.conn.ObjectDelete(ctx, cont, obj)
	}
}

// DeleteObject deletes container/object (with its segments when it is an
// SLO). A missing object is not an error.
func (c *Client) DeleteObject(ctx context.Context, container, object string) error {
	if err := validName("swift delete", container, object); err != nil {
		return err
	}
	su, err := c.Authenticate(ctx)
	if err != nil {
		return err
	}
	_, h, err := c.conn.Object(ctx, container, object)
	if errors.Is(err, ncw.ObjectNotFound) || errors.Is(err, ncw.ContainerNotFound) {
		return nil
	}
	if err != nil {
		return wrap("head object "+container+"/"+object, err)
	}
	if !h.IsLargeObjectSLO() {
		err = c.conn.ObjectDelete(ctx, container, object)
		if errors.Is(err, ncw.ObjectNotFound) {
			return nil
		}
		return wrap("delete object "+container+"/"+object, err)
	}
	// An SLO: the slo middleware deletes the manifest and its segments
	// and reports per-object results in the body.
	resp, _, err := c.conn.Call(ctx, su, ncw.RequestOpts{
		Container: container, ObjectName: object, Operation: "DELETE",
		Parameters: url.Values{"multipart-manifest": {"delete"}},
		Headers:    ncw.Headers{"Accept": "application/json"},
		ErrorMap:   map[int]error{404: ncw.ObjectNotFound},
	})
	if errors.Is(err, ncw.ObjectNotFound) {
		return nil
	}
	if err != nil {
		return wrap("delete object "+container+"/"+object, err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string     `json:"Response Status"`
		Errors [][]string `json:"Errors"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return wrap("delete object "+container+"/"+object, fmt.Errorf("reading SLO delete result: %w", err))
	}
	if !strings.HasPrefix(out.Status, "200") && !strings.HasPrefix(out.Status, "404") {
		return module.Errorf(module.CodeError, "swift delete object "+container+"/"+object, "SLO delete: %s %v", out.Status, out.Errors)
	}
	return nil
}

// Stat returns the size of container/object.
func (c *Client) Stat(ctx context.Context, container, object string) (int64, error) {
	if _, err := c.Authenticate(ctx); err != nil {
		return 0, err
	}
	info, _, err := c.conn.Object(ctx, container, object)
	if err != nil {
		return 0, wrap("head object "+container+"/"+object, err)
	}
	return info.Bytes, nil
}

// TempURLKey returns the temp-URL key: [swift] temp_url_key, else the
// account's X-Account-Meta-Temp-Url-Key (cached). It is a secret.
func (c *Client) TempURLKey(ctx context.Context) (string, error) {
	c.mu.Lock()
	k := c.key
	c.mu.Unlock()
	if k != "" {
		return k, nil
	}
	if c.cfg.TempURLKey != "" {
		return c.cfg.TempURLKey, nil
	}
	if _, err := c.Authenticate(ctx); err != nil {
		return "", err
	}
	_, h, err := c.conn.Account(ctx)
	if err != nil {
		return "", wrap("head account", err)
	}
	k = h["X-Account-Meta-Temp-Url-Key"]
	if k == "" {
		k = h["X-Account-Meta-Temp-Url-Key-2"]
	}
	if k == "" {
		return "", module.Errorf(module.CodeInvalid, "swift temp_url",
			"the Swift account has no temp URL key: set one (swift post -m Temp-URL-Key:KEY) or set [swift] temp_url_key")
	}
	c.mu.Lock()
	c.key = k
	c.mu.Unlock()
	return k, nil
}

// SetTempURLKey stores key as the account's X-Account-Meta-Temp-Url-Key.
func (c *Client) SetTempURLKey(ctx context.Context, key string) error {
	if _, err := c.Authenticate(ctx); err != nil {
		return err
	}
	if err := c.conn.AccountUpdate(ctx, ncw.Headers{"X-Account-Meta-Temp-Url-Key": key}); err != nil {
		return wrap("post account", err)
	}
	c.mu.Lock()
	c.key = key
	c.mu.Unlock()
	return nil
}

// TempURLOptions tune a temp URL.
type TempURLOptions struct {
	Method   string         // GET (default), HEAD, PUT, ...
	Digest   tempurl.Digest // default from config (sha256)
	Filename string         // optional filename= parameter
}

// TempURL returns a temp URL for container/object valid for ttl (default
// [ilo] swift_object_expiry_timeout), in Swift's exact format.
func (c *Client) TempURL(ctx context.Context, container, object string, ttl time.Duration, o TempURLOptions) (string, error) {
	if err := validName("swift temp_url", container, object); err != nil {
		return "", err
	}
	su, err := c.Authenticate(ctx)
	if err != nil {
		return "", err
	}
	key, err := c.TempURLKey(ctx)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		ttl = c.cfg.Expiry
	}
	if o.Method == "" {
		o.Method = "GET"
	}
	if o.Digest == "" {
		o.Digest = c.cfg.TempURLDigest
	}
	return signedURL(su, container, object, key, o, time.Now().Add(ttl))
}

func signedURL(storageURL, container, object, key string, o TempURLOptions, expires time.Time) (string, error) {
	u, err := url.Parse(storageURL)
	if err != nil {
		return "", wrap("temp_url", err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + container + "/" + object
	u.RawPath = ""
	q, err := tempurl.Query(o.Digest, key, strings.ToUpper(o.Method), u.Path, expires, o.Filename)
	if err != nil {
		return "", module.Errorf(module.CodeInvalid, "swift temp_url", "%v", err)
	}
	u.RawQuery = q
	return u.String(), nil
}

// GlanceContainer returns the Swift container Glance stores imageID in.
func (g GlanceConfig) GlanceContainer(imageID string) string {
	if g.Seed <= 0 {
		return g.Container
	}
	n := min(g.Seed, len(imageID))
	n += strings.Count(imageID[:n], "-")
	n = min(n, len(imageID))
	return g.Container + "_" + imageID[:n]
}

// GlanceTempURL returns Ironic's temp URL of a Glance image stored in
// Swift: <swift_endpoint_url>/<swift_api_version>/<swift_account>/<container>/<image id>,
// signed for GET with [glance] swift_temp_url_key for swift_temp_url_duration.
func GlanceTempURL(g GlanceConfig, imageID string, now time.Time) (string, error) {
	var missing []string
	if g.EndpointURL == "" {
		missing = append(missing, "swift_endpoint_url")
	}
	if g.Account == "" {
		missing = append(missing, "swift_account")
	}
	if g.TempURLKey == "" {
		missing = append(missing, "swift_temp_url_key")
	}
	if len(missing) > 0 {
		return "", module.Errorf(module.CodeInvalid, "glance temp_url", "set [glance] %s to resolve Glance image %s", strings.Join(missing, ", "), imageID)
	}
	if !IsUUID(imageID) {
		return "", module.Errorf(module.CodeInvalid, "glance temp_url", "%q is not a Glance image UUID", imageID)
	}
	ep := strings.TrimSuffix(g.EndpointURL, "/")
	// Ironic strips a trailing API version from the endpoint.
	ep = strings.TrimSuffix(ep, "/"+g.APIVersion)
	d := g.Duration
	if d <= 0 {
		d = DefaultGlanceTempURLTime
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", module.Errorf(module.CodeInvalid, "glance temp_url", "[glance] swift_endpoint_url %q is not a URL", g.EndpointURL)
	}
	storage := ep + "/" + g.APIVersion + "/" + g.Account
	return signedURL(storage, g.GlanceContainer(imageID), imageID, g.TempURLKey, TempURLOptions{Method: "GET", Digest: g.TempURLDigest}, now.Add(d))
}

// IsUUID reports whether s looks like a UUID (8-4-4-4-12 hex).
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// Publish uploads file as [ilo] swift_ilo_container/name with
// X-Delete-After ttl (default swift_object_expiry_timeout) and returns a GET
// temp URL valid as long. It implements vmedia.Publisher.
func (c *Client) Publish(ctx context.Context, file, name string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = c.cfg.Expiry
	}
	if _, err := c.UploadFile(ctx, c.cfg.Container, name, file, UploadOptions{DeleteAfter: ttl}); err != nil {
		return "", err
	}
	return c.TempURL(ctx, c.cfg.Container, name, ttl, TempURLOptions{})
}

// Delete removes name from [ilo] swift_ilo_container (missing is fine).
// It implements vmedia.Publisher.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.DeleteObject(ctx, c.cfg.Container, name)
}
