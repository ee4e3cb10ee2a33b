package watch

import (
	"context"
	"fmt"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// remoteFS reports whether dir is on a file system where inotify does not
// see changes made by other machines (NFS, SMB/CIFS, FUSE, 9p, Ceph, ...),
// with its name.
func remoteFS(dir string) (string, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "", false
	}
	switch uint32(st.Type) {
	case 0x6969:
		return "nfs", true
	case 0x517B:
		return "smb", true
	case 0xFF534D42:
		return "cifs", true
	case 0xFE534D42:
		return "smb2", true
	case 0x65735546:
		return "fuse", true
	case 0x01021997:
		return "9p", true
	case 0x00C36400:
		return "ceph", true
	case 0x47504653:
		return "gpfs", true
	case 0x0BD00BD0:
		return "lustre", true
	case 0x6B414653:
		return "afs", true
	}
	return "", false
}

// notifier kicks the scan loop when incoming/ changes.
type notifier struct {
	fw   *fsnotify.Watcher
	kick func()
	err  func(error)
}

// startNotify watches dir with inotify; kick is called on every change.
func startNotify(ctx context.Context, dir string, kick func(), onErr func(error)) (*notifier, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	n := &notifier{fw: fw, kick: kick, err: onErr}
	go n.loop(ctx)
	return n, nil
}

func (n *notifier) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-n.fw.Events:
			if !ok {
				return
			}
			n.kick()
		case err, ok := <-n.fw.Errors:
			if !ok {
				return
			}
			// Overflow or a transient error: rescan to catch up.
			n.err(err)
			n.kick()
		}
	}
}

func (n *notifier) close() error { return n.fw.Close() }
