// Package vmedia publishes boot media and attaches it to a server's
// virtual media, as Ironic's iLO virtual-media boot does
// (setup_vmedia_for_boot, eject_vmedia_devices, cleanup_vmedia_boot).
//
// Media are published through one [Publisher]: the Swift client
// (bindings/swift) when [swift] auth_url is set, else the built-in signed
// web store (bindings/webstore); [ilo] use_web_server_for_images = true
// forces the web store. Image references accepted everywhere:
//
//	/local/path or file:///local/path   published, signed URL
//	http://… or https://…               used verbatim
//	swift:container/object              Swift temp URL
//	swift:object                        … in [ilo] swift_ilo_container
//	glance://UUID or a bare UUID        Glance's Swift temp URL ([glance] swift_*)
package vmedia

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/runtime/module"
)

// Publisher stores a file under a name and returns a URL a BMC can fetch
// until ttl passes. Both *swift.Client and *webstore.Server implement it.
type Publisher interface {
	Publish(ctx context.Context, file, name string, ttl time.Duration) (string, error)
	Delete(ctx context.Context, name string) error
}

// BMC is what vmedia needs from a BMC client; ilo.Client implements it.
type BMC interface {
	// InsertVirtualMedia inserts url into device ("FLOPPY" or "CDROM") and connects it.
	InsertVirtualMedia(ctx context.Context, url, device string) error
	// EjectVirtualMedia ejects device; a no-op when it is empty.
	EjectVirtualMedia(ctx context.Context, device string) error
	// SetOneTimeBoot sets the next boot device ("CDROM").
	SetOneTimeBoot(ctx context.Context, device string) error
}

// Virtual media devices.
const (
	Floppy = "FLOPPY"
	CDROM  = "CDROM"
)

// Store kinds, also the prefix of artifact locations ("swift:c/o", "web:name").
const (
	StoreSwift = "swift"
	StoreWeb   = "web"
)

// FloppyWriter writes a parameters floppy image to path.
type FloppyWriter func(ctx context.Context, path string, params map[string]string) error

// WriteFloppy is the default FloppyWriter (bindings/image, Ironic's floppy).
func WriteFloppy(ctx context.Context, path string, params map[string]string) error {
	return image.WriteFloppy(ctx, path, params, image.FloppyOptions{})
}

// Media resolves image references and sets up virtual-media boot.
type Media struct {
	// Store publishes local files; StoreKind is StoreSwift or StoreWeb.
	Store     Publisher
	StoreKind string
	// Swift resolves swift: references (nil when Swift is not configured).
	Swift *swift.Client
	// Container is [ilo] swift_ilo_container, for swift:object references.
	Container string
	// Glance resolves Glance images stored in Swift.
	Glance swift.GlanceConfig
	// Expiry is the default lifetime of published media and temp URLs.
	Expiry time.Duration
	// Floppy writes parameter floppies (default WriteFloppy).
	Floppy FloppyWriter
	// TempDir holds floppies before publishing ("" = os.TempDir()).
	TempDir string
	// Record, when set, is called with the kind and location of every
	// object before it is stored: the record exists before the object, so a
	// process killed while publishing leaves a record a cleanup deletes
	// (deleting a missing object is not an error), never an unrecorded
	// object. The Lua face records run artifacts with it.
	Record func(kind, location string) error
}

// Published is one object a Media call published.
type Published struct {
	Kind     string // "floppy", "iso" or "file"
	Name     string // object name in the store
	Location string // "swift:<container>/<name>" or "web:<name>"
	URL      string // signed URL
}

func (m *Media) expiry(ttl time.Duration) time.Duration {
	if ttl > 0 {
		return ttl
	}
	if m.Expiry > 0 {
		return m.Expiry
	}
	return swift.DefaultExpiry
}

func (m *Media) location(name string) string {
	if m.StoreKind == StoreSwift && m.Swift != nil {
		return StoreSwift + ":" + m.Swift.Config().Container + "/" + name
	}
	return m.StoreKind + ":" + name
}

// Publish publishes a local file as name for ttl (0 = default expiry).
func (m *Media) Publish(ctx context.Context, file, name, kind string, ttl time.Duration) (Published, error) {
	if m.Store == nil {
		return Published{}, module.Errorf(module.CodeInvalid, "vmedia.publish", "no publisher configured")
	}
	if err := CheckName(name); err != nil {
		return Published{}, err
	}
	st, err := os.Stat(file)
	if err != nil {
		return Published{}, &module.Error{Code: module.CodeNotFound, Operation: "vmedia.publish", Message: err.Error(), Err: err}
	}
	if !st.Mode().IsRegular() {
		return Published{}, module.Errorf(module.CodeInvalid, "vmedia.publish", "%s is not a regular file", file)
	}
	if kind == "" {
		kind = KindOf(file)
	}
	if m.Record != nil {
		if err := m.Record(kind, m.location(name)); err != nil {
			return Published{}, fmt.Errorf("recording %s before publishing it: %w", m.location(name), err)
		}
	}
	u, err := m.Store.Publish(ctx, file, name, m.expiry(ttl))
	if err != nil {
		return Published{}, err
	}
	return Published{Kind: kind, Name: name, Location: m.location(name), URL: u}, nil
}

// KindOf guesses an artifact kind from a file name.
func KindOf(file string) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".iso":
		return "iso"
	case ".img", ".vfd", ".fd":
		return "floppy"
	}
	return "file"
}

// CheckName validates a published object name (what both stores accept).
func CheckName(name string) error {
	if name == "" || len(name) > 200 || name[0] == '.' {
		return module.Errorf(module.CodeInvalid, "vmedia.publish", "name %q must be 1..200 characters and not start with '.'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return module.Errorf(module.CodeInvalid, "vmedia.publish", "name %q: use only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// DefaultName derives a publish name from a file path: its base name with
// other characters replaced by '_', prefixed by the node UUID when known.
func DefaultName(file, nodeUUID string) string {
	base := []rune(filepath.Base(file))
	for i, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			base[i] = '_'
		}
	}
	s := strings.TrimLeft(string(base), ".")
	if s == "" {
		s = "file"
	}
	if nodeUUID != "" {
		s = nodeUUID + "-" + s
	}
	if len(s) > 200 {
		s = s[len(s)-200:]
	}
	return s
}

// Ref kinds returned by ParseRef.
const (
	RefLocal  = "local"
	RefHTTP   = "http"
	RefSwift  = "swift"
	RefGlance = "glance"
)

// ParseRef classifies an image reference. For RefSwift, a is the container
// ("" = default) and b the object; for RefGlance a is the image UUID; for
// RefLocal a is the path; for RefHTTP a is the URL.
func ParseRef(ref string) (kind, a, b string, err error) {
	r := strings.TrimSpace(ref)
	low := strings.ToLower(r)
	switch {
	case r == "":
		return "", "", "", module.Errorf(module.CodeInvalid, "vmedia.resolve", "empty image reference: give a path, an http(s) URL, swift:OBJECT or a Glance UUID")
	case strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://"):
		return RefHTTP, r, "", nil
	case strings.HasPrefix(low, "swift:"):
		rest := strings.TrimPrefix(r[len("swift:"):], "//")
		rest = strings.TrimPrefix(rest, "/")
		cont, obj, ok := strings.Cut(rest, "/")
		if !ok {
			cont, obj = "", rest
		}
		if obj == "" {
			return "", "", "", module.Errorf(module.CodeInvalid, "vmedia.resolve", "swift reference %q names no object: use swift:container/object or swift:object", ref)
		}
		return RefSwift, cont, obj, nil
	case strings.HasPrefix(low, "glance://"):
		id := r[len("glance://"):]
		if !swift.IsUUID(id) {
			return "", "", "", module.Errorf(module.CodeInvalid, "vmedia.resolve", "glance reference %q: want glance://<image UUID>", ref)
		}
		return RefGlance, id, "", nil
	case strings.HasPrefix(low, "file://"):
		return RefLocal, r[len("file://"):], "", nil
	case strings.Contains(r, "://"):
		return "", "", "", module.Errorf(module.CodeInvalid, "vmedia.resolve", "unsupported image reference %q: use a path, http(s)://, swift:, glance:// or a Glance UUID", ref)
	case swift.IsUUID(r):
		if _, err := os.Stat(r); err != nil {
			return RefGlance, r, "", nil
		}
	}
	return RefLocal, r, "", nil
}

// Resolve turns an image reference into a URL a BMC can fetch. Local
// files are published as name (DefaultName when empty); the returned
// Published is nil for references that publish nothing.
func (m *Media) Resolve(ctx context.Context, ref, name, kind string, ttl time.Duration) (string, *Published, error) {
	k, a, b, err := ParseRef(ref)
	if err != nil {
		return "", nil, err
	}
	switch k {
	case RefHTTP:
		return a, nil, nil
	case RefSwift:
		if m.Swift == nil {
			return "", nil, module.Errorf(module.CodeInvalid, "vmedia.resolve", "%q needs Swift: set [swift] auth_url", ref)
		}
		if a == "" {
			a = m.Container
			if a == "" {
				a = m.Swift.Config().Container
			}
		}
		u, err := m.Swift.TempURL(ctx, a, b, m.expiry(ttl), swift.TempURLOptions{})
		return u, nil, err
	case RefGlance:
		u, err := swift.GlanceTempURL(m.Glance, a, time.Now())
		return u, nil, err
	}
	if name == "" {
		name = DefaultName(a, "")
	}
	p, err := m.Publish(ctx, a, name, kind, ttl)
	if err != nil {
		return "", nil, err
	}
	return p.URL, &p, nil
}

// Hooks let a caller observe each step (the Lua face records them).
type Hooks struct {
	// BMC wraps each BMC call (op e.g. "insert_virtual_media").
	BMC func(op string, fields map[string]any, fn func(ctx context.Context) error) error
	// Published is called for every object published.
	Published func(p Published) error
}

func (h Hooks) bmc(ctx context.Context, op string, fields map[string]any, fn func(ctx context.Context) error) error {
	if h.BMC != nil {
		return h.BMC(op, fields, fn)
	}
	return fn(ctx)
}

// Setup is the result of SetupForBoot.
type Setup struct {
	FloppyURL string
	ISOURL    string
	Published []Published
}

// SetupForBoot is Ironic's setup_vmedia_for_boot plus the one-time CDROM
// boot of setup_vmedia: with params, build the parameters floppy
// image-<node uuid>, publish it and attach it as FLOPPY; resolve isoRef
// (a local ISO is published as boot-<node uuid>.iso) and attach it as
// CDROM; set one-time boot from CDROM.
func (m *Media) SetupForBoot(ctx context.Context, bmc BMC, nodeUUID, isoRef string, params map[string]string, h Hooks) (Setup, error) {
	var out Setup
	if bmc == nil {
		return out, module.Errorf(module.CodeInvalid, "vmedia.setup_for_boot", "no BMC")
	}
	if len(params) > 0 {
		if nodeUUID == "" {
			return out, module.Errorf(module.CodeInvalid, "vmedia.setup_for_boot", "a parameters floppy needs a node (image-<node uuid>)")
		}
		p, err := m.publishFloppy(ctx, nodeUUID, params)
		if err != nil {
			return out, err
		}
		out.Published = append(out.Published, p)
		if h.Published != nil {
			if err := h.Published(p); err != nil {
				return out, err
			}
		}
		out.FloppyURL = p.URL
		if err := h.bmc(ctx, "insert_virtual_media", map[string]any{"device": Floppy, "name": p.Name}, func(ctx context.Context) error {
			return bmc.InsertVirtualMedia(ctx, p.URL, Floppy)
		}); err != nil {
			return out, fmt.Errorf("inserting virtual media FLOPPY: %w", err)
		}
	}
	name := "boot.iso"
	if nodeUUID != "" {
		name = "boot-" + nodeUUID + ".iso"
	}
	u, p, err := m.Resolve(ctx, isoRef, name, "iso", 0)
	if err != nil {
		return out, err
	}
	if p != nil {
		out.Published = append(out.Published, *p)
		if h.Published != nil {
			if err := h.Published(*p); err != nil {
				return out, err
			}
		}
	}
	out.ISOURL = u
	if err := h.bmc(ctx, "insert_virtual_media", map[string]any{"device": CDROM, "ref": redactRef(isoRef)}, func(ctx context.Context) error {
		return bmc.InsertVirtualMedia(ctx, u, CDROM)
	}); err != nil {
		return out, fmt.Errorf("inserting virtual media CDROM: %w", err)
	}
	if err := h.bmc(ctx, "set_one_time_boot", map[string]any{"device": CDROM}, func(ctx context.Context) error {
		return bmc.SetOneTimeBoot(ctx, CDROM)
	}); err != nil {
		return out, fmt.Errorf("setting one-time boot CDROM: %w", err)
	}
	return out, nil
}

func (m *Media) publishFloppy(ctx context.Context, nodeUUID string, params map[string]string) (Published, error) {
	dir, err := os.MkdirTemp(m.TempDir, "lightsout-floppy-")
	if err != nil {
		return Published{}, fmt.Errorf("vmedia floppy: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "image-"+nodeUUID)
	w := m.Floppy
	if w == nil {
		w = WriteFloppy
	}
	if err := w(ctx, path, params); err != nil {
		return Published{}, fmt.Errorf("vmedia floppy: %w", err)
	}
	return m.Publish(ctx, path, "image-"+nodeUUID, "floppy", 0)
}

// redactRef drops the query (a temp URL signature) from a reference for
// logging.
func redactRef(ref string) string {
	if i := strings.IndexByte(ref, '?'); i >= 0 {
		return ref[:i] + "?…"
	}
	return ref
}

// EjectAll ejects FLOPPY then CDROM (Ironic's eject_vmedia_devices); the
// first error is returned.
func EjectAll(ctx context.Context, bmc BMC, h Hooks) error {
	if bmc == nil {
		return module.Errorf(module.CodeInvalid, "vmedia.eject_all", "no BMC")
	}
	for _, d := range []string{Floppy, CDROM} {
		if err := h.bmc(ctx, "eject_virtual_media", map[string]any{"device": d}, func(ctx context.Context) error {
			return bmc.EjectVirtualMedia(ctx, d)
		}); err != nil {
			return fmt.Errorf("eject virtual media %s: %w", strings.ToLower(d), err)
		}
	}
	return nil
}

// Unpublish deletes a published object by its artifact location
// ("swift:<container>/<object>" or "web:<name>"). Missing is not an error.
func (m *Media) Unpublish(ctx context.Context, location string) error {
	kind, rest, ok := strings.Cut(location, ":")
	if !ok || rest == "" {
		return module.Errorf(module.CodeInvalid, "vmedia.cleanup", "location %q is not swift:<container>/<object> or web:<name>", location)
	}
	switch kind {
	case StoreSwift:
		if m.Swift == nil {
			return module.Errorf(module.CodeInvalid, "vmedia.cleanup", "%s was published to Swift, which is not configured now ([swift] auth_url)", location)
		}
		cont, obj, ok := strings.Cut(rest, "/")
		if !ok {
			return module.Errorf(module.CodeInvalid, "vmedia.cleanup", "location %q has no container", location)
		}
		return m.Swift.DeleteObject(ctx, cont, obj)
	case StoreWeb:
		if m.StoreKind != StoreWeb || m.Store == nil {
			return module.Errorf(module.CodeInvalid, "vmedia.cleanup", "%s was published to the built-in web store, which is not in use now", location)
		}
		return m.Store.Delete(ctx, rest)
	}
	return module.Errorf(module.CodeInvalid, "vmedia.cleanup", "unknown store in location %q", location)
}

// CleanupResult reports what Cleanup did.
type CleanupResult struct {
	Deleted []string          // locations deleted
	Errors  map[string]string // location -> error (logged, not fatal, as in Ironic)
}

// Cleanup deletes the node's published artifacts (not yet deleted, from
// every run), marks them deleted, then ejects both devices when bmc is not
// nil. Delete errors are collected, not fatal; an eject error is returned.
func (m *Media) Cleanup(ctx context.Context, r module.Run, nodeUUID string, bmc BMC, h Hooks) (CleanupResult, error) {
	return m.CleanupWhere(ctx, r, nodeUUID, bmc, h, nil)
}

// CleanupWhere is Cleanup limited to the artifacts for which match returns
// true (all when match is nil), e.g. the node's older boot ISOs once a fresh
// one is attached.
func (m *Media) CleanupWhere(ctx context.Context, r module.Run, nodeUUID string, bmc BMC, h Hooks, match func(module.Artifact) bool) (CleanupResult, error) {
	res := CleanupResult{Errors: map[string]string{}}
	arts, err := r.Artifacts(nodeUUID)
	if err != nil {
		return res, fmt.Errorf("vmedia cleanup: listing artifacts: %w", err)
	}
	for _, a := range arts {
		if !strings.HasPrefix(a.Location, StoreSwift+":") && !strings.HasPrefix(a.Location, StoreWeb+":") {
			continue
		}
		if match != nil && !match(a) {
			continue
		}
		if u := module.ForeignUUID(a.Location, nodeUUID); u != "" {
			res.Errors[a.Location] = "not deleted: named for node " + u + ", not " + nodeUUID
			continue
		}
		if err := m.Unpublish(ctx, a.Location); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Errors[a.Location] = r.Redact(err.Error())
			continue
		}
		if err := r.ArtifactDeleted(a.ID); err != nil {
			res.Errors[a.Location] = err.Error()
			continue
		}
		res.Deleted = append(res.Deleted, a.Location)
	}
	if bmc != nil {
		if err := EjectAll(ctx, bmc, h); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Fetch makes an image reference available as a local file: a local path
// is returned as it is; anything else is resolved to a URL (http(s)
// verbatim, swift: and Glance as temp URLs) and downloaded to dst (parent
// directories created, written to a temporary name and renamed, so a
// failed download leaves nothing at dst).
func (m *Media) Fetch(ctx context.Context, client *http.Client, ref, dst string) (string, error) {
	k, a, _, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if k == RefLocal {
		if _, err := os.Stat(a); err != nil {
			return "", &module.Error{Code: module.CodeNotFound, Operation: "vmedia.fetch", Message: err.Error(), Err: err}
		}
		return a, nil
	}
	u, _, err := m.Resolve(ctx, ref, "", "", 0)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", module.Errorf(module.CodeInvalid, "vmedia.fetch", "%s: %v", redactRef(ref), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", &module.Error{Code: module.CodeTransient, Operation: "vmedia.fetch",
			Message: fmt.Sprintf("download %s: %v", redactRef(ref), stripURLs(err)), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		code := module.CodeError
		if resp.StatusCode == http.StatusNotFound {
			code = module.CodeNotFound
		}
		return "", module.Errorf(code, "vmedia.fetch", "download %s: HTTP %s", redactRef(ref), resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("vmedia fetch: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".part*")
	if err != nil {
		return "", fmt.Errorf("vmedia fetch: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return "", &module.Error{Code: module.CodeTransient, Operation: "vmedia.fetch",
			Message: fmt.Sprintf("download %s: %v", redactRef(ref), stripURLs(err)), Err: err}
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("vmedia fetch: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("vmedia fetch: %w", err)
	}
	return dst, nil
}

// stripURLs renders err without the URL's query (a temp URL's signature).
func stripURLs(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if i := strings.IndexByte(ue.URL, '?'); i >= 0 {
			ue.URL = ue.URL[:i]
		}
	}
	return err.Error()
}
