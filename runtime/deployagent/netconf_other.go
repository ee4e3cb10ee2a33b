//go:build !linux

package deployagent

import (
	"context"
	"errors"
)

// ConfigureNetwork is only implemented on Linux.
func ConfigureNetwork(context.Context, Params, NetworkOptions) error {
	return errors.New("configuring the network is only supported on Linux")
}
