//go:build !linux

package deployagent

import (
	"context"
	"errors"
)

func installGrub(context.Context, Disk, Partition, string, *Partition) error {
	return errors.New("installing a boot loader is only supported on Linux")
}
