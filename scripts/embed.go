// Package scripts embeds the bundled playbooks (inspect, deploy, clean, ...).
// A site script of the same name overrides a bundled one.
package scripts

import "embed"

// FS holds the bundled playbooks.
//
//go:embed *.lua
var FS embed.FS
