package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/runtime/app"
)

// newSwiftCmd builds `lightsout swift`: upload, temp-url and delete against
// the [swift] store of the configuration (the same client the playbooks use).
func newSwiftCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "swift", Short: "Upload to Swift and sign temp URLs with the configured [swift] account"}
	var container, name string
	var expires time.Duration
	// open returns the client and the container (--container, else [ilo]
	// swift_ilo_container).
	open := func(a *app.App) (*swift.Client, string, error) {
		if expires != 0 {
			if err := app.CheckDurationFlag("expires", expires, time.Second, 365*24*time.Hour, "omit it to use [ilo] swift_object_expiry_timeout"); err != nil {
				return nil, "", err
			}
		}
		cfg, err := swift.ConfigFrom(a.Config)
		if err != nil {
			return nil, "", &app.ConfigError{Err: err}
		}
		if !cfg.Configured() {
			return nil, "", &app.ConfigError{Err: fmt.Errorf("no Swift is configured: set [swift] auth_url, username and password")}
		}
		a.Redactor.Add(cfg.Password, cfg.TempURLKey)
		c, err := swift.New(cfg)
		if err != nil {
			return nil, "", err
		}
		if container == "" {
			return c, cfg.Container, nil
		}
		return c, container, nil
	}
	var keep, noProgress bool
	upload := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload FILE (SLO segments when large) and print a temp URL for it",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			c, container, err := open(a)
			if err != nil {
				return err
			}
			if name == "" {
				name = filepath.Base(args[0])
			}
			f, err := os.Open(args[0])
			if err != nil {
				return &app.ValidationError{Err: fmt.Errorf("upload: %w", err)}
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil || !st.Mode().IsRegular() {
				return &app.ValidationError{Err: fmt.Errorf("upload: %s is not a regular file", args[0])}
			}
			ttl := expires
			if ttl == 0 {
				ttl = c.Config().Expiry
			}
			o := swift.UploadOptions{DeleteAfter: ttl}
			if keep {
				o.DeleteAfter = 0
			}
			var r io.Reader = f
			if !noProgress && isTerminal(g.stderr) {
				bar := progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(g.stderr),
					progressbar.OptionSetDescription("uploading "+name), progressbar.OptionShowBytes(true),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
				r = &progressFile{f: f, bar: bar}
			}
			res, err := c.Upload(cmd.Context(), container, name, r, st.Size(), o)
			if err != nil {
				return err
			}
			u, err := c.TempURL(cmd.Context(), container, name, ttl, swift.TempURLOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "uploaded %s/%s (%d bytes, %d segments)\n", res.Container, res.Object, res.Bytes, res.Segments)
			fmt.Fprintln(g.stdout, u)
			return nil
		}),
	}
	upload.Flags().StringVar(&container, "container", "", "container (default [ilo] swift_ilo_container)")
	upload.Flags().StringVar(&name, "name", "", "object name (default the file's base name)")
	upload.Flags().DurationVar(&expires, "expires", 0, "X-Delete-After and temp URL lifetime (default [ilo] swift_object_expiry_timeout)")
	upload.Flags().BoolVar(&keep, "keep", false, "do not set X-Delete-After")
	upload.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar even on a terminal")
	tempURL := &cobra.Command{
		Use:   "temp-url OBJECT",
		Short: "Print a temp URL for OBJECT in the container",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			c, container, err := open(a)
			if err != nil {
				return err
			}
			u, err := c.TempURL(cmd.Context(), container, args[0], expires, swift.TempURLOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, u)
			return nil
		}),
	}
	tempURL.Flags().StringVar(&container, "container", "", "container (default [ilo] swift_ilo_container)")
	tempURL.Flags().DurationVar(&expires, "expires", 0, "lifetime (default [ilo] swift_object_expiry_timeout)")
	del := &cobra.Command{
		Use:   "delete OBJECT...",
		Short: "Delete objects (and SLO segments); a missing object is not an error",
		Args:  cobra.MinimumNArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			c, container, err := open(a)
			if err != nil {
				return err
			}
			for _, o := range args {
				if err := c.DeleteObject(cmd.Context(), container, o); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "deleted %s/%s\n", container, o)
			}
			return nil
		}),
	}
	del.Flags().StringVar(&container, "container", "", "container (default [ilo] swift_ilo_container)")
	cmd.AddCommand(upload, tempURL, del)
	return cmd
}

// progressFile counts the bytes read from f (sequentially or, for parallel
// SLO segments, at offsets) on a progress bar.
type progressFile struct {
	f   *os.File
	bar *progressbar.ProgressBar
}

func (p *progressFile) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	_ = p.bar.Add(n)
	return n, err
}

func (p *progressFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.f.ReadAt(b, off)
	_ = p.bar.Add(n)
	return n, err
}
