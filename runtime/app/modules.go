package app

import (
	"context"

	"github.com/lightsout/lightsout/bindings/ilo"
	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/bindings/iscsi"
	"github.com/lightsout/lightsout/bindings/pxe"
	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/bindings/vmedia"
	"github.com/lightsout/lightsout/runtime/module"
)

// defaultModules builds the bindings every script can require. Bindings
// that hold process-wide resources (per-iLO limiters, the web store) are
// created once per App here and shut down at Close.
func (a *App) defaultModules(ctx context.Context) ([]module.Module, error) {
	_ = ctx
	vm := vmedia.NewModule()
	a.OnClose(vm.Close)
	a.vmedia = vm
	a.agent = a.agentModule()
	im := ilo.NewModule()
	im.Logger = a.Log   // --log-level and redaction apply to its session logouts
	a.OnClose(im.Close) // deletes the shared iLO Redfish sessions
	return []module.Module{
		im,
		image.NewModule(),
		ipmi.NewModule(),
		pxe.NewModule(),
		iscsi.NewModule(),
		swift.NewModule(),
		vm,
		a.agent,
	}, nil
}
