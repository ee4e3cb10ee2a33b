//go:build !linux

package deployagent

import (
	"fmt"
	"os"
)

// Init is the ramdisk's init; the ramdisk is Linux only.
func Init() {
	fmt.Fprintln(os.Stderr, ConsoleFatal, "the lightsout init runs on Linux only")
	select {}
}
