package jsonstrict

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, doc string
		want      string // "" = valid
	}{
		{"valid", `{"a": [1, {"b": 2, "c": {"b": 3}}], "b": "x"}`, ""},
		{"same key in sibling objects", `[{"a": 1}, {"a": 2}]`, ""},
		{"duplicate top level", "{\"a\": 1,\n \"a\": 2}", `line 2, column 2 ($): duplicate key "a"`},
		{"duplicate deep", `{"nodes": [{"name": "n1", "driver_info": {"x": 1, "x": 2}}]}`, `($.nodes[0].driver_info): duplicate key "x"`},
		{"invalid UTF-8 in a string", "[\n{\"name\": \"n\xff1\"}]", "line 2, column 12: invalid UTF-8 (byte 0xff"},
		{"truncated", `{"a": [1, 2`, "unexpected end of the file"},
		{"syntax", `{"a" 1}`, "invalid JSON"},
		{"trailing data", `{} {}`, "after the end"},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), "nested deeper than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check = %v, want %q", err, tt.want)
			}
		})
	}
}
