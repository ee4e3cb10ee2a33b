package main

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/bindings/image"
)

// newImageRamdiskCmd is `lightsout image ramdisk`: the deploy kernel and
// initramfs of lightsout's own agent (and the deploy ISO).
func newImageRamdiskCmd() *cobra.Command {
	var (
		o               image.RamdiskOptions
		addModules      []string
		onlyModules     []string
		noProg, asQuiet bool
		withTgtd        string
	)
	cmd := &cobra.Command{
		Use:   "ramdisk -o DIR [--iso] [--kernel PATH --modules DIR | --kernel-package NAME]",
		Short: "Build the deploy kernel + initramfs (and ISO) running lightsout's agent",
		Long: `Build the deploy ramdisk of lightsout's own agent into DIR:
  lightsout-deploy.kernel      Debian's generic kernel
  lightsout-deploy.initramfs   gzip newc cpio: /init is this (static) lightsout binary,
                               which runs the agent as PID 1, with the storage, network
                               and file system modules it needs (/etc/lightsout/modules.load)
  lightsout-deploy.iso         with --iso: hybrid BIOS+UEFI deploy ISO of both

The kernel is --kernel/--modules, else --kernel-package, else the running host's
(/boot/vmlinuz-$(uname -r), /lib/modules/$(uname -r)), else linux-image-amd64
fetched with apt-get download (never installed) into the cache dir.
The build is reproducible (same inputs, same bytes; SOURCE_DATE_EPOCH sets the
mtime) and skipped when DIR already holds the outputs of the same inputs.
--with-tgtd (auto: when the host has /usr/sbin/tgtd and tgtadm, Debian's tgt)
adds the userspace iSCSI target and its shared libraries for the iscsi_ilo
driver's iscsi.start_iscsi_target.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.OutputDir == "" {
				return usage("-o/--output is required")
			}
			if len(onlyModules) > 0 {
				o.Modules = onlyModules
			} else if len(addModules) > 0 {
				o.Modules = append(append([]string{}, image.DefaultRamdiskModules...), addModules...)
			}
			switch withTgtd {
			case "yes", "true":
				o.Tools = append(o.Tools, image.TgtdTools...)
			case "auto":
				if image.HostToolsPresent(image.TgtdTools) {
					o.Tools = append(o.Tools, image.TgtdTools...)
				}
			case "no", "false":
			default:
				return usage("--with-tgtd must be auto, yes or no")
			}
			stderr := cmd.ErrOrStderr()
			o.Warn = func(msg string) { fmt.Fprintln(stderr, "warning:", msg) }
			var bar *progressbar.ProgressBar
			if !noProg && !asQuiet && isTerminal(stderr) {
				o.Progress = ramdiskProgress(stderr, &bar)
			}
			r, err := image.BuildRamdisk(cmd.Context(), o)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return imageErr(err)
			}
			if asQuiet {
				return nil
			}
			return printRamdisk(cmd.OutOrStdout(), r)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.OutputDir, "output", "o", "", "output directory")
	fl.BoolVar(&o.ISO, "iso", false, "also write the deploy ISO (BIOS isolinux + UEFI GRUB)")
	fl.StringVar(&o.Append, "append", "", "kernel command line of the ISO (default \""+image.DefaultRamdiskAppend+"\")")
	fl.StringVar(&o.ISOOptions.EFILoader, "efi-loader", "", "ISO: EFI loader to put in efiboot.img (default: grub-mkstandalone)")
	fl.StringVar(&o.ISOOptions.UEFIFrom, "uefi-from", "", "ISO: take efiboot.img and grub.cfg from this deploy ISO")
	fl.StringVar(&o.Kernel, "kernel", "", "kernel image (with --modules)")
	fl.StringVar(&o.ModulesDir, "modules", "", "module tree of --kernel: /lib/modules/<version> holding modules.dep")
	fl.StringVar(&o.KernelPackage, "kernel-package", "", "Debian kernel package (e.g. linux-image-amd64, linux-image-6.1.0-27-amd64) or a .deb file")
	fl.StringVar(&o.CacheDir, "cache-dir", "", "where downloaded kernel packages are kept (default $XDG_CACHE_HOME/lightsout or ~/.cache/lightsout)")
	fl.StringVar(&o.Binary, "binary", "", "static binary to run as /init (default: this lightsout)")
	fl.StringArrayVar(&addModules, "add-module", nil, "kernel module to add to the default list (repeatable)")
	fl.StringArrayVar(&onlyModules, "only-module", nil, "kernel module to include instead of the default list (repeatable)")
	fl.StringVar(&withTgtd, "with-tgtd", "auto", "include tgtd + tgtadm (iSCSI target for iscsi_ilo): auto (when installed), yes or no")
	fl.BoolVar(&o.Force, "force", false, "rebuild even when the outputs match the inputs")
	fl.BoolVar(&noProg, "no-progress", false, "no progress bar even on a terminal")
	fl.BoolVarP(&asQuiet, "quiet", "q", false, "print nothing but warnings and errors")
	cmd.MarkFlagsRequiredTogether("kernel", "modules")
	cmd.MarkFlagsMutuallyExclusive("kernel", "kernel-package")
	cmd.MarkFlagsMutuallyExclusive("only-module", "add-module")
	cmd.MarkFlagsMutuallyExclusive("uefi-from", "efi-loader")
	return cmd
}

// ramdiskProgress draws the build's phases on a terminal: a byte bar when
// the size is known, a spinner otherwise.
func ramdiskProgress(w io.Writer, bar **progressbar.ProgressBar) func(phase string, done, total int64) {
	var cur string
	return func(phase string, done, total int64) {
		if phase != cur || *bar == nil {
			if *bar != nil {
				_ = (*bar).Finish()
			}
			cur = phase
			*bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(phase),
				progressbar.OptionShowBytes(total > 0),
				progressbar.OptionSpinnerType(14),
				progressbar.OptionThrottle(100_000_000),
				progressbar.OptionClearOnFinish())
		}
		if total > 0 {
			_ = (*bar).Set64(done)
		} else {
			_ = (*bar).Add64(0)
		}
	}
}

func printRamdisk(w io.Writer, r *image.RamdiskResult) error {
	state := "built"
	if r.Cached {
		state = "up to date (inputs unchanged)"
	}
	fmt.Fprintf(w, "deploy ramdisk %s: kernel %s (%s), %d modules\n", state, r.KernelVersion, r.KernelSource, len(r.Modules))
	for _, f := range []struct {
		p string
		n int64
	}{{r.Kernel, r.KernelSize}, {r.Initramfs, r.InitramfsSize}, {r.ISO, r.ISOSize}} {
		if f.p != "" {
			fmt.Fprintf(w, "  %7.1f MB  %s\n", float64(f.n)/1e6, f.p)
		}
	}
	_, err := fmt.Fprintf(w, "  %7.1f MB  total\n", float64(r.KernelSize+r.InitramfsSize+r.ISOSize)/1e6)
	return err
}
