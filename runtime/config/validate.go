package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lightsout/lightsout/runtime/secrets"
)

// Problem is one invalid option value.
type Problem struct {
	// Source is "file:line", "default" or "flag".
	Source       string
	Section, Key string
	// Value is the rejected value, or secrets.Mask for a secret option.
	Value string
	// Fix says what is allowed.
	Fix string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: [%s] %s = %q is invalid: want %s", p.Source, p.Section, p.Key, p.Value, p.Fix)
}

// InvalidError lists every invalid option of a configuration.
type InvalidError struct {
	File     string
	Problems []Problem
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	what := "the configuration"
	if e.File != "" {
		what = "config file " + e.File
	}
	if len(lines) == 1 {
		return what + ": " + lines[0]
	}
	return fmt.Sprintf("%s has %d invalid options:\n  %s", what, len(lines), strings.Join(lines, "\n  "))
}

// validate checks every typed option, canonicalises its value (booleans
// become "true"/"false", enums their listed spelling) and reports every
// invalid one at once.
func (c *Config) validate() error {
	types := optionTypes()
	defaults := map[string]string{}
	for _, o := range Known() {
		defaults[o.Section+"."+o.Key] = o.Default
	}
	var probs []Problem
	for id, v := range c.values {
		t, ok := types[id]
		if !ok {
			continue
		}
		raw := strings.TrimSpace(v.Value)
		if raw == "" {
			if def := defaults[id]; def != "" && v.Source != "default" {
				probs = append(probs, c.problem(v, t.Fix+fmt.Sprintf(" (or remove the line to use the default %s)", def)))
			}
			continue
		}
		canon, err := t.Check(raw)
		if err != nil {
			probs = append(probs, c.problem(v, t.Fix))
			continue
		}
		v.Value = canon
		c.values[id] = v
	}
	if len(probs) == 0 {
		return nil
	}
	sort.Slice(probs, func(i, j int) bool {
		if li, lj := lineOf(probs[i].Source), lineOf(probs[j].Source); li != lj {
			return li < lj
		}
		return probs[i].Section+"."+probs[i].Key < probs[j].Section+"."+probs[j].Key
	})
	return &InvalidError{File: c.File, Problems: probs}
}

func (c *Config) problem(v Value, fix string) Problem {
	val := v.Value
	if v.Secret && val != "" {
		val = secrets.Mask
	}
	if strings.Contains(val, "://") {
		val = secrets.MaskURLs(val)
		if pw := urlPassword(v.Value); pw != "" { // belt and braces
			val = strings.ReplaceAll(val, pw, secrets.Mask)
		}
	}
	if len(val) > 80 {
		val = val[:80] + "…"
	}
	return Problem{Source: v.Source, Section: v.Section, Key: v.Key, Value: val, Fix: fix}
}

// lineOf returns the line number of a "file:line" source, 0 otherwise.
func lineOf(src string) int {
	i := strings.LastIndexByte(src, ':')
	if i < 0 {
		return 0
	}
	n := 0
	for _, r := range src[i+1:] {
		if r < '0' || r > '9' {
			return 0
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// suggest returns ", did you mean [s] k?" for the known option nearest to
// section.key, or "".
func suggest(section, key string) string {
	best, bestD := "", 4
	for _, o := range Known() {
		d := editDistance(key, o.Key)
		if o.Section != section {
			d++
		}
		if d < bestD {
			best, bestD = fmt.Sprintf("[%s] %s", o.Section, o.Key), d
		}
	}
	if best == "" {
		return ""
	}
	return ", did you mean " + best + "?"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
