// Package capture walks an iLO's Redfish tree and writes it in the layout
// of the captured trees in ../shared/fixtures/captures (the resource at
// /redfish/v1/Systems/1/ is Systems/1/index.json), so that operators can
// send us, or replay with `lightsout sim --capture`, what their iLO
// answers. It only GETs, follows @odata.id links from the service root,
// is bounded in depth and count, waits between requests, and redacts
// secrets and serial numbers before anything is written.
package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// Getter GETs one Redfish resource (redfish.Client.GetJSON).
type Getter interface {
	GetJSON(ctx context.Context, op, path string) (map[string]any, error)
}

// Options bound a capture.
type Options struct {
	// MaxDepth is the number of link hops from the service root (0: 10).
	MaxDepth int
	// MaxResources caps the resources fetched (0: 3000).
	MaxResources int
	// Interval is the pause between two requests (0: 50 ms; negative: none).
	Interval time.Duration
}

// Result says what was written.
type Result struct {
	Resources int      // written
	Skipped   []string // links not followed (excluded, beyond a bound), sorted
	Failed    []string // "path: error" for GETs that failed
}

// Redacted replaces every redacted value.
const Redacted = "REDACTED"

// root is where every walk starts.
const root = "/redfish/v1"

// excluded are subtrees not walked: schema stores (generic DMTF text),
// log entries (large, personal), our own session, task monitors.
var excluded = []*regexp.Regexp{
	regexp.MustCompile(`(?i)^/redfish/v1/jsonschemas(/|$)`),
	regexp.MustCompile(`(?i)^/redfish/v1/schemastore(/|$)`),
	regexp.MustCompile(`(?i)^/redfish/v1/\$metadata`),
	regexp.MustCompile(`(?i)/entries(/|$)`),
	regexp.MustCompile(`(?i)^/redfish/v1/sessionservice/sessions/.+`),
	regexp.MustCompile(`(?i)^/redfish/v1/taskservice/tasks/.+`),
}

// secretKey matches the keys whose values are redacted: credentials,
// tokens, licence keys, serial numbers.
var secretKey = regexp.MustCompile(`(?i)(password|passphrase|secret|token|licensekey|^key$|serialnumber|^serial$|serialnum|^sn$)`)

// Run walks the tree behind g and writes it under dir, which must not
// exist or be empty.
func Run(ctx context.Context, g Getter, dir string, o Options) (Result, error) {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 10
	}
	if o.MaxResources <= 0 {
		o.MaxResources = 3000
	}
	if o.Interval == 0 {
		o.Interval = 50 * time.Millisecond
	}
	if err := emptyDir(dir); err != nil {
		return Result{}, err
	}
	type item struct {
		path  string
		depth int
	}
	var res Result
	seen := map[string]bool{norm(root): true}
	queue := []item{{root, 0}}
	skipped := map[string]bool{}
	type doc struct {
		path string
		m    map[string]any
	}
	var docs []doc
	secrets := map[string]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if res.Resources > 0 && o.Interval > 0 {
			t := time.NewTimer(o.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return res, ctx.Err()
			case <-t.C:
			}
		}
		m, err := g.GetJSON(ctx, "capture", it.path)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if iloapi.KindOf(err) == iloapi.KindLoginFailed {
				return res, err
			}
			res.Failed = append(res.Failed, it.path+": "+err.Error())
			continue
		}
		for _, l := range links(m) {
			k := norm(l)
			if seen[k] || !strings.HasPrefix(k, strings.ToLower(root)) {
				continue
			}
			seen[k] = true
			switch {
			case isExcluded(l), it.depth+1 > o.MaxDepth, len(seen) > o.MaxResources:
				skipped[l] = true
			default:
				queue = append(queue, item{l, it.depth + 1})
			}
		}
		collect(m, secrets)
		docs = append(docs, doc{it.path, m})
		res.Resources++
	}
	// Redact only now: a serial number also shows up inside other values
	// (an iSCSI initiator name, a host name) of resources read earlier.
	for _, d := range docs {
		redact(d.m, secrets)
		if err := write(dir, d.path, d.m); err != nil {
			return res, err
		}
	}
	for l := range skipped {
		res.Skipped = append(res.Skipped, l)
	}
	sort.Strings(res.Skipped)
	return res, nil
}

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return fmt.Errorf("capture directory %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("capture directory %s is not empty: give a new or empty directory", dir)
	}
	return nil
}

// norm is the identity of a path: lower case, no trailing slash, no query.
func norm(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return strings.TrimSuffix(strings.ToLower(p), "/")
}

func isExcluded(p string) bool {
	for _, re := range excluded {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// links returns every "@odata.id" string in v (nested too), in order.
func links(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s, ok := t[k].(string); ok && k == "@odata.id" {
					out = append(out, s)
					continue
				}
				walk(t[k])
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// collect records the values of secret keys (at least 4 characters) so
// that they are also redacted where they appear inside other strings.
func collect(v any, into map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if x, ok := e.(string); ok && secretKey.MatchString(k) && len(strings.TrimSpace(x)) >= 4 {
				into[x] = true
			}
			collect(e, into)
		}
	case []any:
		for _, e := range t {
			collect(e, into)
		}
	}
}

// redact replaces secret and serial-number values (empty and null values
// are kept, they tell what the iLO reports) and every occurrence of a
// collected secret inside other strings.
func redact(v any, secrets map[string]bool) {
	scrub := func(x string) string {
		for sec := range secrets {
			x = strings.ReplaceAll(x, sec, Redacted)
		}
		return x
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if secretKey.MatchString(k) {
				switch x := e.(type) {
				case string:
					if x != "" {
						t[k] = Redacted
					}
					continue
				case float64, json.Number, bool:
					t[k] = Redacted
					continue
				}
			}
			if x, ok := e.(string); ok {
				t[k] = scrub(x)
				continue
			}
			redact(e, secrets)
		}
	case []any:
		for i, e := range t {
			if x, ok := e.(string); ok {
				t[i] = scrub(x)
				continue
			}
			redact(e, secrets)
		}
	}
}

// write stores m as <dir>/<path below /redfish/v1>/index.json.
func write(dir, p string, m map[string]any) error {
	rel := strings.Trim(p[len(root):], "/")
	if i := strings.IndexAny(rel, "?#"); i >= 0 {
		rel = rel[:i]
	}
	parts := []string{dir}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" {
			continue
		}
		if seg == "." || seg == ".." || strings.ContainsAny(seg, `\:`) {
			return fmt.Errorf("capture: refusing the link %q (path segment %q)", p, seg)
		}
		parts = append(parts, seg)
	}
	d := filepath.Join(parts...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("capture %s: %w", p, err)
	}
	return os.WriteFile(filepath.Join(d, "index.json"), append(b, '\n'), 0o644)
}
