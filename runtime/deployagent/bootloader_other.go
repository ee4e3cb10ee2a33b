//go:build !linux

package deployagent

import (
	"context"
	"errors"
)

func installGrubBIOS(context.Context, Disk, Partition, string) error {
	return errors.New("installing a boot loader is only supported on Linux")
}
