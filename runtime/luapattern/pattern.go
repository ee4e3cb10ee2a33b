// Package luapattern matches Lua patterns (string.find, match, gmatch and
// gsub) like gopher-lua's pm package, but interruptibly: the matcher is an
// iterative backtracking machine that consults a context every few thousand
// steps, so a catastrophic pattern stops when its run is cancelled or times
// out, and gmatch/gsub iterate lazily instead of collecting every match first.
//
// The dialect is gopher-lua's (the engine's scripts were written against it),
// not PUC Lua 5.1's: no %f frontier, '^' anchors gmatch too, "%" followed by
// nothing matches nothing, and a range in a set only spans plain characters.
// The parse and compile rules follow gopher-lua's pm (MIT licence, Copyright
// (c) 2015 Yusuke Inuzuka); the matcher is a new implementation.
package luapattern

import (
	"context"
	"fmt"
)

// MaxDepth bounds the backtracking stack (pending alternatives plus saved
// captures), like gopher-lua's recursion limit: beyond it matching fails
// with "pattern/input too complex".
const MaxDepth = 1000000

// checkEvery is how many matcher steps run between two context checks.
const checkEvery = 4096

// Error is a pattern syntax or matching error.
type Error struct {
	Pos     int // position in the pattern; -1 at its end, -2 unknown
	Message string
}

func (e *Error) Error() string {
	switch e.Pos {
	case -1:
		return e.Message + " at EOS"
	case -2:
		return e.Message
	}
	return fmt.Sprintf("%s at %d", e.Message, e.Pos)
}

const eos = -1

type opCode uint8

const (
	opChar opCode = iota
	opMatch
	opTailMatch
	opJmp
	opSplit
	opSave
	opPSave
	opBrace
	opNumber
)

type inst struct {
	op   opCode
	cls  class
	a, b int
}

// Pattern is a compiled pattern.
type Pattern struct {
	insts    []inst
	anchored bool
}

// Anchored reports whether the pattern starts with '^' (one attempt only).
func (p *Pattern) Anchored() bool { return p.anchored }

// Compile parses a pattern.
func Compile(pat string) (p *Pattern, err error) {
	defer func() {
		if v := recover(); v != nil {
			pe, ok := v.(*Error)
			if !ok {
				panic(v)
			}
			p, err = nil, pe
		}
	}()
	sc := &scanner{src: pat}
	seq := parseSeq(sc, true)
	c := &compiler{insts: []inst{{op: opSave, a: 0}}, capture: 2}
	c.compile(seq)
	if seq.mustTail {
		c.insts = append(c.insts, inst{op: opSave, a: 1}, inst{op: opTailMatch})
	}
	c.insts = append(c.insts, inst{op: opSave, a: 1}, inst{op: opMatch})
	return &Pattern{insts: c.insts, anchored: seq.mustHead}, nil
}

// Match is one successful match: Len() capture slots in pairs, slot 0 and 1
// being the whole match, then one pair per capture.
type Match struct {
	vals []int
	pos  []bool
}

// Len is the number of capture slots (2 + 2 per capture).
func (m *Match) Len() int { return len(m.vals) }

// IsPos reports whether slot i is a position capture ("()").
func (m *Match) IsPos(i int) bool { return m.pos[i] }

// At returns slot i: a byte offset, or for a position capture the 1-based
// position.
func (m *Match) At(i int) int { return m.vals[i] }

// Iter yields the successive matches of a pattern in a subject, the way
// gsub and gmatch walk it.
type Iter struct {
	p     *Pattern
	src   string
	sp    int
	limit int
	count int
	done  bool
	m     machine
}

// Iter returns an iterator over the matches of p in src starting at byte
// offset, stopping after limit matches (limit < 0: no limit; gopher-lua's
// quirk kept: limit 0 stops after a first attempt that does not match).
func (p *Pattern) Iter(ctx context.Context, src string, offset, limit int) *Iter {
	return &Iter{p: p, src: src, sp: offset, limit: limit, m: machine{ctx: ctx}}
}

// Next returns the next match, nil when there is none, or an error (the
// context's when it ended, "pattern/input too complex", a bad capture
// reference).
func (it *Iter) Next() (*Match, error) {
	for !it.done && it.sp <= len(it.src) {
		m, end, err := it.m.run(it.p.insts, it.src, it.sp)
		if err != nil {
			it.done = true
			return nil, err
		}
		it.sp++
		if m != nil {
			if it.sp < end {
				it.sp = end
			}
			it.count++
		}
		if it.count == it.limit || it.p.anchored {
			it.done = true
		}
		if m != nil {
			return m, nil
		}
	}
	it.done = true
	return nil, nil
}

// Steps returns how many matcher steps the iterator has run (for tests).
func (it *Iter) Steps() int { return it.m.steps }

// FindFirst returns the first match of p in src at or after offset.
func (p *Pattern) FindFirst(ctx context.Context, src string, offset int) (*Match, error) {
	return p.Iter(ctx, src, offset, 1).Next()
}

// entry is one backtracking record: a pending alternative (undo false) or
// a capture slot to restore (undo true).
type entry struct {
	undo   bool
	pos    bool
	pc, sp int // alternative; for undo: pc is the slot, sp the old value
}

type machine struct {
	ctx   context.Context
	steps int
	stack []entry
	vals  []int
	pos   []bool
}

func (m *machine) set(slot, v int, isPos bool) {
	for slot >= len(m.vals) {
		m.vals = append(m.vals, 0)
		m.pos = append(m.pos, false)
	}
	m.vals[slot], m.pos[slot] = v, isPos
}

// run attempts a match at sp; it returns the match and its end, or nil.
func (m *machine) run(insts []inst, src string, sp int) (*Match, int, error) {
	m.stack = m.stack[:0]
	m.vals = m.vals[:0]
	m.pos = m.pos[:0]
	pc := 0
	for {
		m.steps++
		if m.steps%checkEvery == 0 && m.ctx != nil {
			select {
			case <-m.ctx.Done():
				return nil, 0, m.ctx.Err()
			default:
			}
		}
		in := &insts[pc]
		ok := true
		switch in.op {
		case opChar:
			if sp < len(src) && in.cls.matches(int(src[sp])) {
				pc++
				sp++
			} else {
				ok = false
			}
		case opMatch:
			return m.result(), sp, nil
		case opTailMatch:
			if sp >= len(src) {
				return m.result(), sp, nil
			}
			ok = false
		case opJmp:
			pc = in.a
		case opSplit:
			if len(m.stack)+1 >= MaxDepth {
				return nil, 0, &Error{Pos: -2, Message: "pattern/input too complex"}
			}
			m.stack = append(m.stack, entry{pc: in.b, sp: sp})
			pc = in.a
		case opSave:
			if len(m.stack)+1 >= MaxDepth {
				return nil, 0, &Error{Pos: -2, Message: "pattern/input too complex"}
			}
			old, oldPos := 0, false
			if in.a < len(m.vals) {
				old, oldPos = m.vals[in.a], m.pos[in.a]
			}
			m.stack = append(m.stack, entry{undo: true, pc: in.a, sp: old, pos: oldPos})
			m.set(in.a, sp, false)
			pc++
		case opPSave:
			m.set(in.a, sp+1, true)
			m.set(in.a+1, sp+1, true)
			pc++
		case opBrace:
			if sp >= len(src) || int(src[sp]) != in.a {
				ok = false
				break
			}
			count := 1
			ok = false
			for sp = sp + 1; sp < len(src); sp++ {
				if int(src[sp]) == in.b {
					count--
				}
				if count == 0 {
					pc++
					sp++
					ok = true
					break
				}
				if int(src[sp]) == in.a {
					count++
				}
			}
		case opNumber:
			idx := in.a * 2
			if idx >= len(m.vals)-1 {
				return nil, 0, &Error{Pos: -2, Message: "invalid capture index"}
			}
			b, e := m.vals[idx], m.vals[idx+1]
			if b < 0 || e < b || e > len(src) {
				return nil, 0, &Error{Pos: -2, Message: "invalid capture index"}
			}
			c := src[b:e]
			if len(src)-sp < len(c) || src[sp:sp+len(c)] != c {
				ok = false
				break
			}
			pc++
			sp += len(c)
		}
		if ok {
			continue
		}
		// backtrack
		for {
			if len(m.stack) == 0 {
				return nil, 0, nil
			}
			e := m.stack[len(m.stack)-1]
			m.stack = m.stack[:len(m.stack)-1]
			if e.undo {
				m.vals[e.pc], m.pos[e.pc] = e.sp, e.pos
				continue
			}
			pc, sp = e.pc, e.sp
			break
		}
	}
}

func (m *machine) result() *Match {
	return &Match{vals: append([]int(nil), m.vals...), pos: append([]bool(nil), m.pos...)}
}
