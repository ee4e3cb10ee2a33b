package daemon

import (
	"context"
	"strings"

	"github.com/lightsout/lightsout/bindings/pxe"
	"github.com/lightsout/lightsout/runtime/app"
)

// PXEBoot is the built-in boot server of the pxe_ilo driver as a Service:
// with [pxe] builtin_server = true, serve copies the boot loaders into
// [pxe] tftp_root and serves it over TFTP on [pxe] tftp_address, and
// [deploy] http_root over HTTP on [pxe] http_address when that is set.
// Only node directories and the shared boot loaders are served.
func PXEBoot(a *app.App) Service { return &pxeBoot{a: a} }

type pxeBoot struct {
	a   *app.App
	srv *pxe.BootServer
}

func (s *pxeBoot) Name() string { return "PXE boot server" }

func (s *pxeBoot) Start(ctx context.Context) error {
	c, err := pxe.ConfigFrom(s.a.Config)
	if err != nil {
		return err
	}
	if !c.Builtin {
		s.a.Log.Info("PXE boot server not started ([pxe] builtin_server is off): the site's TFTP server serves [pxe] tftp_root")
		return nil
	}
	missing, err := c.Setup()
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		s.a.Log.Warn("boot loaders not installed: install pxelinux, syslinux-common, grub-efi-amd64-signed, shim-signed, ipxe",
			"missing", strings.Join(missing, " "))
	}
	srv, err := pxe.StartBootServer(ctx, c, s.a.Log)
	if err != nil {
		return err
	}
	s.srv = srv
	s.a.Log.Info("TFTP server listening", "address", srv.TFTP.Addr().String(), "root", c.TFTPRoot)
	if h := srv.HTTPAddr(); h != "" {
		s.a.Log.Info("HTTP boot server listening", "url", "http://"+h+"/", "root", c.HTTPRoot)
	}
	return nil
}

// Addrs returns the TFTP and HTTP addresses ("" when not started).
func (s *pxeBoot) Addrs() (tftp, http string) {
	if s.srv == nil {
		return "", ""
	}
	return s.srv.TFTP.Addr().String(), s.srv.HTTPAddr()
}

func (s *pxeBoot) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}
