// Package stdlib embeds the Lua helper modules scripts require (steps, boot
// mode, parameters, ...) and the LuaLS definition files in types/.
package stdlib

import "embed"

// FS holds the bundled helper modules (*.lua) and LuaLS definitions (types/).
//
//go:embed *.lua types
var FS embed.FS
