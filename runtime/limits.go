package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// Defaults of the per-run resource limits.
const (
	DefaultRunMemoryLimit   = 256 << 20
	DefaultRunMaxCoroutines = 1000
	memoryLimitOption       = "[lightsout] run_memory_limit"
	maxCoroutinesOption     = "[lightsout] run_max_coroutines"
	memSampleInterval       = 5 * time.Millisecond
	heapMetric              = "/memory/classes/heap/objects:bytes"
	measureOverheadRatio    = 10 // a run spends at most ~1/10 of its time measuring itself
	heapGrowthForcesMeasure = 1  // a heap growth of a whole limit since the last measurement forces one
	sizeString              = 16
	sizeNumber              = 8
	sizeArraySlot           = 16
	sizeHashEntry           = 48
	sizeTable               = 128
	sizeFunction            = 64
	sizeUpvalue             = 32
	sizeThread              = 512
	sizeUserData            = 64
	sizeRegister            = 16
	dedupeStringsLongerThan = 64
)

// limitError builds the resource_limit error of operation.
func limitError(op, format string, args ...any) *module.Error {
	return &module.Error{Code: module.CodeResourceLimit, Operation: op, Message: fmt.Sprintf(format, args...)}
}

// memWatch samples the process heap while runs are active and bumps epoch
// on every sample that finds the heap above the memory limit ("pressure"):
// only then do runs measure their own Lua data.
type memWatch struct {
	mu     sync.Mutex
	active int
	stop   chan struct{}
	done   chan struct{}

	threshold atomic.Int64
	epoch     atomic.Uint64
	heap      atomic.Int64 // last sample
}

// enter registers an active run and starts the sampler with the first one;
// the returned func unregisters it (and stops the sampler with the last).
func (w *memWatch) enter(limit int64) func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := w.threshold.Load(); t == 0 || limit < t {
		w.threshold.Store(limit)
	}
	w.active++
	if w.active == 1 {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.sample(w.stop, w.done)
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.active--
		if w.active == 0 {
			close(w.stop)
			<-w.done
		}
	}
}

func (w *memWatch) sample(stop, done chan struct{}) {
	defer close(done)
	s := []metrics.Sample{{Name: heapMetric}}
	t := time.NewTicker(memSampleInterval)
	defer t.Stop()
	for {
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			h := int64(s[0].Value.Uint64())
			w.heap.Store(h)
			if h > w.threshold.Load() {
				w.epoch.Add(1)
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// guard enforces one run's limits on its LState: memory (measured under
// pressure from luaCtx.Done, which gopher-lua calls before every
// instruction), coroutines, and the size of strings built by the string
// functions. All its methods run on the run's Lua goroutine.
type guard struct {
	w        *memWatch
	L        *lua.LState
	limit    int64
	maxCo    int
	cancel   context.CancelCauseFunc
	ctx      context.Context // cancelled with the limit error as cause
	seen     uint64
	nextAt   time.Time
	heapAt   int64
	measured int64 // last measurement (bytes), for tests and errors
	threads  []weak.Pointer[lua.LState]
	release  func()
}

// newGuard binds a guard to L under parent and sets L's context.
func (e *Engine) newGuard(parent context.Context, L *lua.LState) *guard {
	g := &guard{w: &e.mem, L: L,
		limit: e.cfg.Bytes("lightsout", "run_memory_limit", DefaultRunMemoryLimit),
		maxCo: e.cfg.Int("lightsout", "run_max_coroutines", DefaultRunMaxCoroutines)}
	if g.maxCo <= 0 {
		g.maxCo = DefaultRunMaxCoroutines
	}
	g.ctx, g.cancel = context.WithCancelCause(parent)
	g.release = g.w.enter(g.limit)
	L.SetContext(&luaCtx{Context: g.ctx, g: g})
	return g
}

// close stops the guard (idempotent).
func (g *guard) close() {
	if g.release != nil {
		g.release()
		g.release = nil
	}
	g.cancel(nil)
}

// err returns the limit error that stopped the run, if any.
func (g *guard) err() *module.Error {
	var me *module.Error
	if c := context.Cause(g.ctx); c != nil && errors.As(c, &me) && me.Code == module.CodeResourceLimit {
		return me
	}
	return nil
}

// poll is called on a new pressure epoch: it measures the run's Lua data
// (rate-limited so measuring costs at most ~10% of the run's time, unless
// the heap grew by a whole limit since) and cancels the run with a
// resource_limit cause when it holds more than its limit.
func (g *guard) poll(epoch uint64) {
	g.seen = epoch
	now := time.Now()
	heap := g.w.heap.Load()
	if now.Before(g.nextAt) && heap-g.heapAt < g.limit/heapGrowthForcesMeasure {
		return
	}
	n := g.measure()
	g.measured = n
	g.heapAt = heap
	g.nextAt = now.Add(measureOverheadRatio * time.Since(now))
	if n > g.limit {
		g.cancel(limitError("", "the run holds more than %s of Lua data, over its memory limit of %s (raise %s)",
			fmtBytes(n), fmtBytes(g.limit), memoryLimitOption))
	}
}

// checkSize raises a resource_limit error in L when a string function is
// about to build a result of n bytes over the limit.
func (g *guard) checkSize(L *lua.LState, op string, n float64) {
	if n > float64(g.limit) {
		module.Raise(L, op, limitError(op, "result of %s exceeds the run's memory limit of %s (raise %s)",
			fmtBytes(int64(min(n, 1<<62))), fmtBytes(g.limit), memoryLimitOption))
	}
}

// admitCoroutine raises resource_limit when the run already has
// run_max_coroutines coroutines alive; else it tracks th.
func (g *guard) admitCoroutine(L *lua.LState) {
	if len(g.threads) >= g.maxCo {
		live := g.threads[:0]
		for _, w := range g.threads {
			if th := w.Value(); th != nil && !th.Dead {
				live = append(live, w)
			}
		}
		clear(g.threads[len(live):])
		g.threads = live
	}
	if len(g.threads) >= g.maxCo {
		module.Raise(L, "coroutine.create", limitError("coroutine.create", "the run already has %d coroutines alive, its limit (raise %s)",
			len(g.threads), maxCoroutinesOption))
	}
}

func (g *guard) track(th *lua.LState) {
	g.threads = append(g.threads, weak.Make(th))
	th.SetContext(&luaCtx{Context: th.Context(), g: g})
}

// luaCtx is the context an LState runs under. gopher-lua calls Done before
// every instruction: under memory pressure it lets the run measure itself.
// Its Value and Done are the wrapped cancel context's, so child contexts
// (coroutines) attach to it without a goroutine.
type luaCtx struct {
	context.Context
	g *guard
}

// Done implements context.Context.
func (c *luaCtx) Done() <-chan struct{} {
	if e := c.g.w.epoch.Load(); e != c.g.seen {
		c.g.poll(e)
	}
	return c.Context.Done()
}

// Err implements context.Context: the limit error when a limit stopped the
// run, so the Lua error names it.
func (c *luaCtx) Err() error {
	err := c.Context.Err()
	if err != nil {
		if le := c.g.err(); le != nil {
			return fmt.Errorf("%w (%s)", le, le.Code)
		}
	}
	return err
}

// measure estimates the Lua data reachable from the run's state: globals,
// registry, the registers of every reachable thread, tables, closures and
// their upvalues. It stops as soon as it passes the limit.
func (g *guard) measure() int64 {
	m := &sizer{limit: g.limit, seen: map[unsafe.Pointer]struct{}{}}
	m.push(g.L)
	m.push(g.L.G.Global)
	m.push(g.L.G.Registry)
	if g.L.G.CurrentThread != nil {
		m.push(g.L.G.CurrentThread)
	}
	m.run()
	return m.total
}

type sizer struct {
	limit, total int64
	seen         map[unsafe.Pointer]struct{}
	work         []lua.LValue
}

func (m *sizer) push(v lua.LValue) {
	switch x := v.(type) {
	case nil:
	case lua.LString:
		m.total += sizeString
		if len(x) > dedupeStringsLongerThan {
			if m.first(unsafe.Pointer(unsafe.StringData(string(x)))) {
				m.total += int64(len(x))
			}
		} else {
			m.total += int64(len(x))
		}
	case lua.LNumber:
		m.total += sizeNumber
	case *lua.LTable, *lua.LFunction, *lua.LState, *lua.LUserData:
		m.work = append(m.work, v)
	}
}

func (m *sizer) first(p unsafe.Pointer) bool {
	if _, ok := m.seen[p]; ok {
		return false
	}
	m.seen[p] = struct{}{}
	return true
}

func (m *sizer) run() {
	for len(m.work) > 0 && m.total <= m.limit {
		v := m.work[len(m.work)-1]
		m.work = m.work[:len(m.work)-1]
		switch x := v.(type) {
		case *lua.LTable:
			if x == nil || !m.first(unsafe.Pointer(x)) {
				continue
			}
			m.total += sizeTable
			m.push(x.Metatable)
			// The array part's slots alone may be over the limit: then
			// stop before walking it.
			if m.total+int64(x.MaxN())*sizeArraySlot > m.limit {
				m.total += int64(x.MaxN()) * sizeArraySlot
				return
			}
			x.ForEach(func(k, val lua.LValue) {
				if _, isNum := k.(lua.LNumber); isNum {
					m.total += sizeArraySlot
				} else {
					m.total += sizeHashEntry
					m.push(k)
				}
				m.push(val)
			})
		case *lua.LFunction:
			if x == nil || !m.first(unsafe.Pointer(x)) {
				continue
			}
			m.total += sizeFunction
			if x.Env != nil {
				m.push(x.Env)
			}
			for _, up := range x.Upvalues {
				if up != nil {
					m.total += sizeUpvalue
					m.push(up.Value())
				}
			}
			if x.Proto != nil && m.first(unsafe.Pointer(x.Proto)) {
				m.total += int64(len(x.Proto.Code)) * 4
				for _, c := range x.Proto.Constants {
					m.push(c)
				}
			}
		case *lua.LUserData:
			if x == nil || !m.first(unsafe.Pointer(x)) {
				continue
			}
			m.total += sizeUserData
			if x.Env != nil {
				m.push(x.Env)
			}
			m.push(x.Metatable)
		case *lua.LState:
			if x == nil || !m.first(unsafe.Pointer(x)) {
				continue
			}
			m.total += sizeThread
			if x.Env != nil {
				m.push(x.Env)
			}
			regs, capacity := registers(x)
			m.total += int64(capacity) * sizeRegister
			for _, r := range regs {
				m.push(r)
			}
		}
	}
}

// regView mirrors the head of gopher-lua's unexported registry struct
// (array []LValue; top int); registerOffset is the offset of LState.reg.
// Both are checked once by reflection: when gopher-lua's layout changes,
// registers returns nothing and TestRegistersVisible fails.
type regView struct {
	array []lua.LValue
	top   int
}

var registerOffset = func() uintptr {
	f, ok := reflect.TypeFor[lua.LState]().FieldByName("reg")
	if !ok || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
		return 0
	}
	rt := f.Type.Elem()
	if rt.NumField() < 2 || rt.Field(0).Name != "array" || rt.Field(0).Type != reflect.TypeFor[[]lua.LValue]() ||
		rt.Field(0).Offset != 0 || rt.Field(1).Name != "top" || rt.Field(1).Type.Kind() != reflect.Int ||
		rt.Field(1).Offset != unsafe.Offsetof(regView{}.top) {
		return 0
	}
	return f.Offset
}()

// registers returns the live registers of L (its value stack up to top)
// and the stack's capacity.
func registers(L *lua.LState) ([]lua.LValue, int) {
	if registerOffset == 0 {
		return nil, 0
	}
	p := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(L), registerOffset))
	if p == nil {
		return nil, 0
	}
	rv := (*regView)(p)
	top := min(max(rv.top, 0), len(rv.array))
	return rv.array[:top], cap(rv.array)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// panicMessage renders a Go panic that escaped a run: its value only (a
// runtime error's text or a binding's panic message), never a stack that
// could hold arguments.
func panicMessage(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return "internal error (a Go panic in the engine or a binding): " + s
}
