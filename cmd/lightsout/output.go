package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(anys(headers)...)
	return t
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func (t *table) row(cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = strings.ReplaceAll(fmt.Sprint(c), "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fmtTime renders a timestamp for tables.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// fmtMap renders a map as sorted key=value lines for `node show`, bounded
// (textDepth, textItems, textString, textLine).
func fmtMap(m map[string]any) string {
	m = boundedMap(m, textDepth, textItems, textString)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		v, _ := json.Marshal(m[k])
		if s, ok := m[k].(string); ok {
			v = []byte(s)
		}
		fmt.Fprintf(&b, "%s=%s", k, v)
		if b.Len() > textLine {
			break
		}
	}
	return cutLine(b.String())
}

// cutLine bounds one rendered text field to textLine bytes.
func cutLine(s string) string {
	if len(s) <= textLine {
		return s
	}
	return cutString(s, textLine) + " (see --json)"
}

// isTerminal reports whether w is a terminal (progress displays only go there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Output bounds: a node or run holding a huge or deeply nested value
// (written by a script or an import) is shown cut, never in full.
const (
	textDepth  = 6       // nesting levels shown by `node show` / `runs show`
	textItems  = 2000    // values shown per field
	textString = 1024    // bytes shown of one string
	textLine   = 8 << 10 // bytes of one rendered field
	jsonDepth  = 32
	jsonItems  = 200000
	jsonString = 1 << 20
)

// truncated is what replaces a value past the bounds.
const truncated = "<truncated>"

// bounded returns a copy of v with maps and lists nested deeper than
// maxDepth replaced by "<truncated>", at most items values in all (the
// rest of a map or list is dropped with a "…" entry saying how many), and
// strings cut to maxString bytes. The result encodes as valid JSON.
func bounded(v any, maxDepth, items, maxString int) any {
	budget := items
	return bound(v, 0, maxDepth, &budget, maxString)
}

func bound(v any, depth, maxDepth int, budget *int, maxString int) any {
	*budget--
	switch x := v.(type) {
	case string:
		return cutString(x, maxString)
	case map[string]any:
		if depth >= maxDepth && len(x) > 0 {
			return fmt.Sprintf("%s (an object nested deeper than %d levels)", truncated, maxDepth)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]any, len(x))
		for i, k := range keys {
			if *budget <= 0 {
				out["…"] = fmt.Sprintf("%s (%d more keys)", truncated, len(keys)-i)
				break
			}
			out[cutString(k, maxString)] = bound(x[k], depth+1, maxDepth, budget, maxString)
		}
		return out
	case []any:
		if depth >= maxDepth && len(x) > 0 {
			return fmt.Sprintf("%s (a list nested deeper than %d levels)", truncated, maxDepth)
		}
		out := make([]any, 0, len(x))
		for i, e := range x {
			if *budget <= 0 {
				out = append(out, fmt.Sprintf("%s (%d more items)", truncated, len(x)-i))
				break
			}
			out = append(out, bound(e, depth+1, maxDepth, budget, maxString))
		}
		return out
	}
	return v
}

// cutString cuts s to at most max bytes on a rune boundary, noting the cut.
func cutString(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…%s (%d bytes more)", s[:cut], truncated, len(s)-cut)
}

// boundedMap is bounded for a map field (nil stays nil).
func boundedMap(m map[string]any, maxDepth, items, maxString int) map[string]any {
	if m == nil {
		return nil
	}
	out, _ := bounded(map[string]any(m), maxDepth, items, maxString).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// jsonBounded bounds a map for --json output (jsonDepth, jsonItems,
// jsonString).
func jsonBounded(m map[string]any) map[string]any {
	return boundedMap(m, jsonDepth, jsonItems, jsonString)
}
