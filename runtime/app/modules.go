package app

import (
	"context"

	"github.com/lightsout/lightsout/runtime/module"
)

// defaultModules builds the bindings every script can require. Bindings
// that need process-wide resources (limiters, servers) are created once per
// App here and shut down at Close.
func (a *App) defaultModules(ctx context.Context) ([]module.Module, error) {
	_ = ctx
	return []module.Module{}, nil
}
