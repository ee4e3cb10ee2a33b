package runtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
)

// recorder batches events of all runs of a process into few transactions,
// so recording never dominates a run.
type recorder struct {
	st      store.Store
	log     *slog.Logger
	mu      sync.Mutex
	buf     []store.Event
	writeMu sync.Mutex
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

const (
	batchSize     = 512
	flushInterval = 100 * time.Millisecond
)

func newRecorder(st store.Store, log *slog.Logger) *recorder {
	r := &recorder{st: st, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

func (r *recorder) add(e store.Event) {
	r.mu.Lock()
	r.buf = append(r.buf, e)
	n := len(r.buf)
	r.mu.Unlock()
	if n >= batchSize {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		if err := r.flush(context.Background()); err != nil {
			r.log.Error("recording events failed", "err", err)
		}
	}
}

// flush writes every buffered event.
func (r *recorder) flush(ctx context.Context) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	batch := r.buf
	r.buf = nil
	r.mu.Unlock()
	for len(batch) > 0 {
		n := min(len(batch), 4*batchSize)
		if err := r.st.AppendEvents(ctx, batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// close flushes and stops the background writer.
func (r *recorder) close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return r.flush(context.Background())
}
