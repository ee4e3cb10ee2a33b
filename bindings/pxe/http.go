package pxe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTPHandler serves the boot files of a Tree over HTTP (GET and HEAD,
// ranges as net/http does) with the same policy as the TFTP server:
// refused paths answer 403 and are logged, no directory is ever listed.
func HTTPHandler(t Tree, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only boot file server", http.StatusMethodNotAllowed)
			return
		}
		f, fi, err := t.Open(r.URL.Path)
		if err != nil {
			switch {
			case errors.Is(err, ErrRefused):
				log.Warn("http boot: request refused", "client", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
				http.Error(w, "forbidden: not a boot file of a registered node", http.StatusForbidden)
			case errors.Is(err, fs.ErrNotExist):
				http.NotFound(w, r)
			default:
				log.Warn("http boot: open failed", "path", r.URL.Path, "err", err)
				http.Error(w, "cannot read the file", http.StatusInternalServerError)
			}
			return
		}
		defer f.Close()
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
		log.Debug("http boot: sent", "client", r.RemoteAddr, "file", r.URL.Path, "bytes", fi.Size())
	})
}

// BootServer is the built-in TFTP server for [pxe] tftp_root and, when an
// HTTP address is given, the HTTP boot server for [deploy] http_root.
type BootServer struct {
	TFTP   *TFTPServer
	HTTP   *http.Server
	ln     net.Listener
	done   chan struct{}
	cancel context.CancelFunc
}

// StartBootServer listens and serves until ctx is cancelled or Close.
// httpAddr "" starts no HTTP server.
func StartBootServer(ctx context.Context, c Config, log *slog.Logger) (*BootServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ts, err := ListenTFTP(c.TFTPAddress, Tree{Root: c.TFTPRoot}, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &BootServer{TFTP: ts, done: make(chan struct{}), cancel: cancel}
	if c.HTTPAddress != "" {
		ln, err := net.Listen("tcp", c.HTTPAddress)
		if err != nil {
			ts.Close()
			cancel()
			return nil, fmt.Errorf("http boot server: listen on %s: %w (set [pxe] http_address)", c.HTTPAddress, err)
		}
		b.ln = ln
		b.HTTP = &http.Server{Handler: HTTPHandler(Tree{Root: c.HTTPRoot}, log), ReadHeaderTimeout: 10 * time.Second}
		go b.HTTP.Serve(ln)
	}
	go func() {
		defer close(b.done)
		if err := ts.Serve(ctx); err != nil {
			log.Error("tftp server stopped", "err", err)
		}
	}()
	return b, nil
}

// HTTPAddr is the HTTP server's address ("" when none).
func (b *BootServer) HTTPAddr() string {
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Close stops both servers and waits for the TFTP transfers to end.
func (b *BootServer) Close() error {
	b.cancel()
	err := b.TFTP.Close()
	<-b.done
	if b.HTTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if herr := b.HTTP.Shutdown(ctx); herr != nil && err == nil {
			err = herr
		}
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
