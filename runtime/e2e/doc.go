// Package e2e holds the end-to-end tests of the bundled playbooks: the real
// runtime (SQLite store, Lua engine, bindings), the iLO simulator and the
// emulated IPA ramdisk, all on 127.0.0.1. It has no non-test code.
package e2e
