package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/secrets"
)

// newImageCmd is `lightsout image`: build and inspect virtual media.
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build and inspect virtual media (parameters floppy, boot ISO, deploy ramdisk)",
	}
	cmd.AddCommand(newImageFloppyCmd(), newImageISOCmd(), newImageInspectCmd(), newImageRamdiskCmd())
	return cmd
}

// imageErr turns bad-input errors of the image package into usage errors.
func imageErr(err error) error {
	if errors.Is(err, image.ErrInvalid) {
		return usage("%v", err)
	}
	return err
}

// splitKV parses NAME=VALUE flags.
func splitKV(flag string, vals []string) (map[string]string, error) {
	out := map[string]string{}
	for i, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, usage("--%s %q: expected NAME=VALUE in --%s number %d (%s)", flag, secrets.Mask, flag, i+1, app.NotShown)
		}
		if _, dup := out[k]; dup {
			return nil, usage("--%s: %s given twice", flag, k)
		}
		out[k] = val
	}
	return out, nil
}

// parseSize parses a byte count with an optional K/M suffix (1024-based).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.ToUpper(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1024, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1024*1024, strings.TrimSuffix(t, "M")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, usage("--size %q: expected a byte count such as 1474560, 1440K or 2M", s)
	}
	return n * mult, nil
}

func newImageFloppyCmd() *cobra.Command {
	var (
		out, size, label, paramsFile string
		params, files                []string
	)
	cmd := &cobra.Command{
		Use:   "floppy -o FILE --param K=V... [--file NAME=SRC...]",
		Short: "Write a FAT12 parameters floppy (parameters.txt, label ir-vfd-dev)",
		Long: `Write a FAT12 floppy image holding parameters.txt (one key=value per line, sorted)
and optional extra files, labelled ir-vfd-dev as IPA and diskimage-builder ramdisks expect.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usage("-o/--output is required")
			}
			p, err := splitKV("param", params)
			if err != nil {
				return err
			}
			if paramsFile != "" {
				data, err := os.ReadFile(paramsFile)
				if err != nil {
					return usage("--params-file: %v", err)
				}
				for k, v := range image.ParseParams(data) {
					if _, ok := p[k]; !ok {
						p[k] = v
					}
				}
			}
			f, err := splitKV("file", files)
			if err != nil {
				return err
			}
			opts := image.FloppyOptions{Label: label, Files: f}
			if size != "" {
				if opts.Size, err = parseSize(size); err != nil {
					return err
				}
			}
			if err := image.WriteFloppy(cmd.Context(), out, p, opts); err != nil {
				return imageErr(err)
			}
			return printWritten(cmd.OutOrStdout(), out)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "output image file")
	fl.StringArrayVar(&params, "param", nil, "parameter KEY=VALUE for parameters.txt (repeatable)")
	fl.StringVar(&paramsFile, "params-file", "", "read more key=value lines from this file (--param wins)")
	fl.StringArrayVar(&files, "file", nil, "extra file NAME=SRC (repeatable)")
	fl.StringVar(&size, "size", "", "image size in bytes or with K/M suffix (default 1440K)")
	fl.StringVar(&label, "label", "", "volume label (default ir-vfd-dev)")
	return cmd
}

func newImageISOCmd() *cobra.Command {
	var (
		o      image.ISOOptions
		out    string
		files  []string
		noProg bool
	)
	cmd := &cobra.Command{
		Use:   "iso -o FILE --kernel K --ramdisk R [--append ARGS] [--uefi-from ISO | --efi-loader FILE] [--bios-only | --uefi-only]",
		Short: "Build a boot ISO (BIOS isolinux + UEFI GRUB by default)",
		Long: `Build a bootable ISO from a kernel and a ramdisk. By default it boots under BIOS
(isolinux) and UEFI (GRUB in boot/grub/efiboot.img). The UEFI loader comes from a
deploy ISO (--uefi-from: its efiboot.img and grub.cfg are reused, grub.cfg rewritten),
an EFI binary (--efi-loader), or the host's grub-mkstandalone (grub-efi-amd64-bin).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usage("-o/--output is required")
			}
			if o.Kernel == "" || o.Ramdisk == "" {
				return usage("--kernel and --ramdisk are required")
			}
			f, err := splitKV("file", files)
			if err != nil {
				return err
			}
			o.Files = f
			var bar *progressbar.ProgressBar
			if stderr := cmd.ErrOrStderr(); !noProg && isTerminal(stderr) {
				bar = progressbar.NewOptions64(o.PayloadSize(),
					progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("writing "+out),
					progressbar.OptionShowBytes(true),
					progressbar.OptionThrottle(100_000_000),
					progressbar.OptionClearOnFinish())
				o.Progress = func(written, total int64) {
					if total != bar.GetMax64() {
						bar.ChangeMax64(total)
					}
					_ = bar.Set64(written)
				}
			}
			err = image.WriteISO(cmd.Context(), out, o)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return imageErr(err)
			}
			return printWritten(cmd.OutOrStdout(), out)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "output ISO file")
	fl.StringVar(&o.Kernel, "kernel", "", "kernel image (stored as /vmlinuz)")
	fl.StringVar(&o.Ramdisk, "ramdisk", "", "ramdisk (stored as /initrd)")
	fl.StringVar(&o.Append, "append", "", "kernel command line")
	fl.StringVar(&o.UEFIFrom, "uefi-from", "", "deploy ISO whose efiboot.img and grub.cfg provide UEFI boot")
	fl.StringVar(&o.EFILoader, "efi-loader", "", "EFI loader (e.g. GRUB BOOTX64.EFI) to put in efiboot.img")
	fl.BoolVar(&o.BIOSOnly, "bios-only", false, "only the BIOS boot entry (isolinux)")
	fl.BoolVar(&o.UEFIOnly, "uefi-only", false, "only the UEFI boot entry")
	fl.StringArrayVar(&files, "file", nil, "extra file NAME=SRC (repeatable; openstack/... switches the volume id to config-2)")
	fl.StringVar(&o.VolumeID, "volume-id", "", "volume id (default VMEDIA_BOOT_ISO)")
	fl.StringVar(&o.Isolinux, "isolinux", "", "isolinux.bin to use (default: Debian isolinux package)")
	fl.StringVar(&o.Ldlinux, "ldlinux", "", "ldlinux.c32 to use (default: Debian syslinux-common package)")
	fl.BoolVar(&noProg, "no-progress", false, "no progress bar even on a terminal")
	cmd.MarkFlagsMutuallyExclusive("bios-only", "uefi-only")
	cmd.MarkFlagsMutuallyExclusive("uefi-from", "efi-loader")
	return cmd
}

func printWritten(w io.Writer, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "wrote %s (%d bytes)\n", path, st.Size())
	return err
}

func newImageInspectCmd() *cobra.Command {
	var asJSON, showSecrets bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show an ISO's El Torito entries and files, or a floppy's files and parameters",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := image.Inspect(args[0])
			if err != nil {
				return imageErr(err)
			}
			if !showSecrets {
				maskInfo(info)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			printInfo(w, info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print secret parameters (tokens, keys, passwords) instead of ******")
	return cmd
}

func printInfo(w io.Writer, info *image.Info) {
	fmt.Fprintf(w, "%s: %s image, %d bytes, label %q\n", info.Path, strings.ToUpper(info.Kind), info.Size, info.Label)
	if info.Kind == "iso" {
		if len(info.ElTorito) == 0 {
			fmt.Fprintln(w, "El Torito: none (not bootable)")
		} else {
			fmt.Fprintln(w, "El Torito entries:")
			for i, e := range info.ElTorito {
				fmt.Fprintf(w, "  %d  %-4s  bootable=%-5t  emulation=%-5s  load_sectors=%-5d  lba=%-7d  %s\n",
					i+1, e.Platform, e.Bootable, e.Emulation, e.LoadSectors, e.LBA, e.File)
			}
		}
		if info.KernelCmdline != "" {
			fmt.Fprintf(w, "kernel command line: %s\n", info.KernelCmdline)
		}
	}
	fmt.Fprintln(w, "files:")
	for _, f := range info.Files {
		if f.Dir {
			fmt.Fprintf(w, "  %12s  %s/\n", "-", f.Path)
		} else {
			fmt.Fprintf(w, "  %12d  %s\n", f.Size, f.Path)
		}
	}
	if info.Params != nil {
		fmt.Fprintf(w, "parameters (%s):\n", image.ParametersFile)
		for _, k := range sortedParamKeys(info.Params) {
			fmt.Fprintf(w, "  %s=%s\n", k, info.Params[k])
		}
	}
}

func sortedParamKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maskInfo masks the values of secret parameters (ipa-agent-token,
// deployment_key, ...) in the parameters and on the kernel command line.
func maskInfo(info *image.Info) {
	for k := range info.Params {
		if secrets.IsSecretKey(k) {
			info.Params[k] = secrets.Mask
		}
	}
	if info.KernelCmdline != "" {
		args := strings.Fields(info.KernelCmdline)
		for i, a := range args {
			if k, _, ok := strings.Cut(a, "="); ok && secrets.IsSecretKey(k) {
				args[i] = k + "=" + secrets.Mask
			}
		}
		info.KernelCmdline = strings.Join(args, " ")
	}
}
