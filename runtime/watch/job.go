package watch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/jsonstrict"
)

// action maps a job action to the playbook it runs, as the CLI verbs do.
type action struct {
	name   string
	script string // "" for "run": the job names the script
	// params are set for the playbook (they override the job's params).
	params map[string]string
}

// actions is the one table of job actions. The playbook verbs run the
// playbooks of the CLI verbs (a site script of the same name replaces the
// bundled one); a verb whose playbook is not installed fails validation.
func actions() []action {
	return []action{
		{"inspect", app.ScriptInspect, nil},
		{"deploy", app.ScriptDeploy, nil},
		{"undeploy", app.ScriptTeardown, nil},
		{"clean", app.ScriptClean, map[string]string{"mode": "manual"}},
		{"provide", app.ScriptClean, map[string]string{"mode": "automated"}},
		{"run", "", nil},
	}
}

// ActionScript returns the script a playbook verb runs ("" for "run"), and
// whether the action exists.
func ActionScript(name string) (string, bool) {
	for _, a := range actions() {
		if a.name == name {
			return a.script, true
		}
	}
	return "", false
}

// actionParams returns the parameters an action sets for its playbook.
func actionParams(name string) map[string]string {
	for _, a := range actions() {
		if a.name == name {
			return a.params
		}
	}
	return nil
}

func actionNames() string {
	var out []string
	for _, a := range actions() {
		out = append(out, a.name)
	}
	return strings.Join(out, ", ")
}

// Spec is a parsed job file. Parse checks types and shapes; the watcher
// then checks the script and the nodes against the installation.
type Spec struct {
	ID           string
	Action       string
	Script       string
	Nodes        []string
	All          bool
	Params       map[string]string
	InstanceInfo map[string]any
	// Steps are the manual clean steps of a "clean" job.
	Steps    []app.CleanStep
	Timeout  time.Duration
	Parallel int
}

// FieldError is a problem with one field of a job ("" for the whole file).
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Problem)
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// knownFields are the fields of a job document.
func knownFields() []string {
	return []string{"action", "all", "id", "instance_info", "nodes", "parallel", "params", "script", "steps", "timeout"}
}

// Parse decodes a job document (JSON for .json, YAML for .yaml/.yml) and
// checks every field. All problems are returned together (errors.Join of
// *FieldError).
func Parse(name string, data []byte) (*Spec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fieldErr("", "empty job file: write the job document (JSON or YAML) to a temporary name, then rename it into incoming/")
	}
	if !utf8.Valid(data) {
		return nil, fieldErr("", "%s", strings.TrimPrefix(jsonstrict.Check(data).Error(), "invalid JSON: "))
	}
	var doc any
	switch ext := strings.ToLower(extOf(name)); ext {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, fieldErr("", "malformed JSON: %s", jsonErr(data, err))
		}
		if dec.More() {
			return nil, fieldErr("", "malformed JSON: more than one document in the file; put one job per file")
		}
		if err := jsonstrict.Check(data); err != nil { // duplicate keys: encoding/json keeps the last silently
			return nil, fieldErr("", "malformed JSON: %s", err)
		}
	case ".yaml", ".yml":
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fieldErr("", "malformed YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	default:
		return nil, fieldErr("", "unsupported job file extension %q: use .json, .yaml or .yml", ext)
	}
	m, ok := asMap(doc)
	if !ok {
		return nil, fieldErr("", "the job must be an object/mapping with an \"action\" field, got %s", kindOf(doc))
	}
	return parseMap(m)
}

func parseMap(m map[string]any) (*Spec, error) {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	known := map[string]bool{}
	for _, k := range knownFields() {
		known[k] = true
	}
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		add(fieldErr(k, "unknown field; the fields of a job are %s", strings.Join(knownFields(), ", ")))
	}
	s := &Spec{}
	if v, ok := m["id"]; ok {
		str, isStr := v.(string)
		switch {
		case !isStr:
			add(fieldErr("id", "must be a string, got %s", kindOf(v)))
		case strings.TrimSpace(str) == "":
			add(fieldErr("id", "must not be empty (leave it out to identify the job by its file name and content)"))
		case len(str) > 200 || strings.IndexFunc(str, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			add(fieldErr("id", "must be at most 200 printable characters"))
		default:
			s.ID = str
		}
	}
	script := ""
	switch v, ok := m["action"]; {
	case !ok:
		add(fieldErr("action", "missing: set one of %s", actionNames()))
	default:
		str, isStr := v.(string)
		if !isStr {
			add(fieldErr("action", "must be a string (one of %s), got %s", actionNames(), kindOf(v)))
			break
		}
		sc, known := ActionScript(str)
		if !known {
			add(fieldErr("action", "unknown action %q: use one of %s", str, actionNames()))
			break
		}
		s.Action, script = str, sc
	}
	if v, ok := m["script"]; ok {
		str, isStr := v.(string)
		switch {
		case !isStr || strings.TrimSpace(str) == "":
			add(fieldErr("script", "must be a non-empty script name, got %s", kindOf(v)))
		case s.Action != "" && s.Action != "run":
			add(fieldErr("script", "only for action \"run\"; action %q runs the %q playbook", s.Action, script))
		default:
			s.Script = str
		}
	} else if s.Action == "run" {
		add(fieldErr("script", "missing: action \"run\" needs the name of an installed script (see `lightsout scripts list`)"))
	}
	if s.Action != "" && s.Action != "run" {
		s.Script = script
	}
	if v, ok := m["nodes"]; ok {
		list, isList := v.([]any)
		if !isList {
			add(fieldErr("nodes", "must be a list of node names, got %s", kindOf(v)))
		} else {
			seen := map[string]bool{}
			for i, e := range list {
				str, isStr := e.(string)
				f := fmt.Sprintf("nodes[%d]", i)
				switch {
				case !isStr || strings.TrimSpace(str) == "":
					add(fieldErr(f, "must be a node name or uuid, got %s", kindOf(e)))
				case seen[str]:
					add(fieldErr(f, "node %q is listed twice", str))
				default:
					seen[str] = true
					s.Nodes = append(s.Nodes, str)
				}
			}
			if len(list) == 0 {
				add(fieldErr("nodes", "is empty: name at least one node, or use \"all\": true"))
			}
		}
	}
	if v, ok := m["all"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			add(fieldErr("all", "must be true or false, got %s", kindOf(v)))
		}
		s.All = b
	}
	_, hasNodes := m["nodes"]
	switch {
	case s.All && hasNodes:
		add(fieldErr("nodes", "use either \"nodes\" or \"all\": true, not both"))
	case !s.All && !hasNodes && s.Action != "" && s.Action != "run":
		add(fieldErr("nodes", "missing: action %q needs \"nodes\": [names] or \"all\": true", s.Action))
	}
	if v, ok := m["params"]; ok {
		pm, isMap := asMap(v)
		if !isMap {
			add(fieldErr("params", "must be an object of KEY: value, got %s", kindOf(v)))
		} else {
			s.Params = map[string]string{}
			for _, k := range sortedKeys(pm) {
				str, err := scalar(pm[k])
				if err != nil {
					add(fieldErr("params."+k, "%v", err))
					continue
				}
				s.Params[k] = str
			}
		}
	}
	if v, ok := m["instance_info"]; ok {
		im, isMap := asMap(v)
		switch {
		case !isMap:
			add(fieldErr("instance_info", "must be an object (image_source, image_checksum, ...), got %s", kindOf(v)))
		case s.Action != "" && s.Action != "deploy":
			add(fieldErr("instance_info", "only for action \"deploy\""))
		default:
			s.InstanceInfo = normalize(im).(map[string]any)
		}
	}
	if v, ok := m["steps"]; ok {
		list, isList := v.([]any)
		switch {
		case !isList:
			add(fieldErr("steps", `must be a list such as [{"interface": "deploy", "step": "erase_devices"}], got %s`, kindOf(v)))
		case s.Action != "" && s.Action != "clean":
			add(fieldErr("steps", "only for action \"clean\""))
		default:
			b, err := json.Marshal(normalize(list))
			if err == nil {
				s.Steps, err = app.ParseCleanSteps(string(b))
			}
			if err != nil {
				add(fieldErr("steps", "%s", strings.ReplaceAll(strings.TrimPrefix(err.Error(), "--steps: "), "--steps", "steps")))
			}
		}
	} else if s.Action == "clean" && s.Params["steps"] == "" {
		add(fieldErr("steps", `missing: manual cleaning needs a step list, e.g. "steps": [{"interface": "deploy", "step": "erase_devices"}]`))
	}
	if v, ok := m["timeout"]; ok {
		d, err := duration(v)
		if err != nil {
			add(fieldErr("timeout", "%v", err))
		}
		s.Timeout = d
	}
	if v, ok := m["parallel"]; ok {
		n, err := integer(v)
		if err != nil || n < 1 || n > 10000 {
			add(fieldErr("parallel", "must be a whole number from 1 to 10000 (runs of this job at once), got %v", v))
		}
		s.Parallel = int(n)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// jsonErr renders a decoding error with line and column.
func jsonErr(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the document ends early (truncated file?)"
	}
	if off < 0 {
		return err.Error()
	}
	line, col := 1, 1
	for _, c := range data[:max(min(int(off), len(data))-1, 0)] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[fmt.Sprint(k)] = e
		}
		return out, true
	}
	return nil, false
}

// normalize turns json.Number into int64/float64 and YAML maps into
// map[string]any, so values store as plain JSON.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	if m, ok := asMap(v); ok {
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// scalar renders a parameter value as the string a script sees.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("must be a string, number or boolean, got %s (encode structured values as a JSON string)", kindOf(v))
}

func integer(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Int64()
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, errors.New("too large")
		}
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return int64(x), nil
		}
	}
	return 0, fmt.Errorf("not a whole number: %v", v)
}

// duration accepts "30m", "1h30m" or a number of seconds.
func duration(v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(x)); err != nil {
			return 0, fmt.Errorf("invalid duration %q: use a duration like \"30m\" or \"1h30m\", or a number of seconds", x)
		}
	default:
		n, err := integer(v)
		if err != nil {
			return 0, fmt.Errorf("must be a duration like \"30m\" or a number of seconds, got %s", kindOf(v))
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %v", v)
	}
	return d, nil
}

func kindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", truncate(x, 40))
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case json.Number, int, int64, uint64, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "a list"
	}
	if _, ok := asMap(v); ok {
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// extOf returns the extension of a file name, including the dot.
func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[i:]
	}
	return ""
}
