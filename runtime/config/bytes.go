package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseBytes parses a size in bytes with an optional binary suffix: "1048576",
// "512K", "256M", "1G", "2T" (also "KB"/"KiB", any case). It refuses
// negative, fractional-byte and overflowing values.
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = strings.TrimSpace(t[:n-1])
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, fmt.Errorf("invalid size %q: use a number of bytes with an optional K, M, G or T suffix (e.g. 256M)", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v), nil
}

// Bytes returns [section] key as a size in bytes (see ParseBytes), or def
// when unset, invalid or not positive.
func (c *Config) Bytes(section, key string, def int64) int64 {
	v, ok := c.Get(section, key)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	n, err := ParseBytes(v)
	if err != nil || n <= 0 {
		return def
	}
	return n
}
