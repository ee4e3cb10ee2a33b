package luapattern

// The parser keeps gopher-lua pm's scanner model (Next/Peek/Save/Restore
// over a position that starts "before" the first byte) so that every
// pattern, malformed ones included, parses exactly as gopher-lua parses it.

type scanState struct {
	pos     int
	started bool
}

type scanner struct {
	src   string
	st    scanState
	saved scanState
}

func (sc *scanner) next() int {
	if !sc.st.started {
		sc.st.started = true
		if len(sc.src) == 0 {
			sc.st.pos = eos
		}
	} else {
		sc.st.pos = sc.nextPos()
	}
	if sc.st.pos == eos {
		return eos
	}
	return int(sc.src[sc.st.pos])
}

func (sc *scanner) nextPos() int {
	if sc.st.pos == eos || sc.st.pos >= len(sc.src)-1 {
		return eos
	}
	if !sc.st.started {
		return 0
	}
	return sc.st.pos + 1
}

func (sc *scanner) peek() int {
	curEOS := sc.st.pos == eos
	ch := sc.next()
	if !curEOS {
		if sc.st.pos == eos {
			sc.st.pos = len(sc.src) - 1
		} else {
			sc.st.pos--
			if sc.st.pos < 0 {
				sc.st.pos = 0
				sc.st.started = false
			}
		}
	}
	return ch
}

func (sc *scanner) save()    { sc.saved = sc.st }
func (sc *scanner) restore() { sc.st = sc.saved }

func fail(pos int, msg string) { panic(&Error{Pos: pos, Message: msg}) }

// classes

type class interface{ matches(ch int) bool }

type dotClass struct{}

func (dotClass) matches(int) bool { return true }

type charClass int

func (c charClass) matches(ch int) bool { return int(c) == ch }

type singleClass int

func (c singleClass) matches(ch int) bool {
	ret := false
	switch int(c) {
	case 'a', 'A':
		ret = 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z'
	case 'c', 'C':
		ret = ch <= 0x1F || ch == 0x7F
	case 'd', 'D':
		ret = '0' <= ch && ch <= '9'
	case 'l', 'L':
		ret = 'a' <= ch && ch <= 'z'
	case 'p', 'P':
		ret = (0x21 <= ch && ch <= 0x2f) || (0x3a <= ch && ch <= 0x40) || (0x5b <= ch && ch <= 0x60) || (0x7b <= ch && ch <= 0x7e)
	case 's', 'S':
		switch ch {
		case ' ', '\f', '\n', '\r', '\t', '\v':
			ret = true
		}
	case 'u', 'U':
		ret = 'A' <= ch && ch <= 'Z'
	case 'w', 'W':
		ret = '0' <= ch && ch <= '9' || 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z'
	case 'x', 'X':
		ret = '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'
	case 'z', 'Z':
		ret = ch == 0
	default:
		return ch == int(c)
	}
	if 'A' <= c && c <= 'Z' {
		return !ret
	}
	return ret
}

type setClass struct {
	not     bool
	classes []class
}

func (s *setClass) matches(ch int) bool {
	for _, c := range s.classes {
		if c.matches(ch) {
			return !s.not
		}
	}
	return s.not
}

type rangeClass struct{ begin, end class }

func (r rangeClass) matches(ch int) bool {
	b, ok1 := r.begin.(charClass)
	e, ok2 := r.end.(charClass)
	return ok1 && ok2 && int(b) <= ch && ch <= int(e)
}

// pattern tree

type node interface{}

type singleNode struct{ cls class }

type seqNode struct {
	mustHead, mustTail bool
	items              []node
}

type repeatNode struct {
	kind int
	cls  class
}

type posCapNode struct{}

type capNode struct{ seq *seqNode }

type numberNode struct{ n int }

type braceNode struct{ begin, end int }

func parseClass(sc *scanner, allowSet bool) class {
	ch := sc.next()
	switch ch {
	case '%':
		return singleClass(sc.next())
	case '.':
		if allowSet {
			return dotClass{}
		}
		return charClass(ch)
	case '[':
		if allowSet {
			return parseSet(sc)
		}
		return charClass(ch)
	case eos:
		fail(sc.st.pos, "unexpected EOS")
	}
	return charClass(ch)
}

func parseSet(sc *scanner) class {
	set := &setClass{}
	if sc.peek() == '^' {
		set.not = true
		sc.next()
	}
	isRange := false
	for {
		ch := sc.peek()
		switch {
		case ch == eos:
			fail(sc.st.pos, "unexpected EOS")
		case ch == ']' && len(set.classes) > 0:
			sc.next()
			if isRange {
				set.classes = append(set.classes, charClass('-'))
			}
			return set
		case (ch == ']' || ch == '-') && len(set.classes) > 0:
			// only '-' reaches here (']' with classes returned above)
			sc.next()
			isRange = true
			continue
		default:
			set.classes = append(set.classes, parseClass(sc, false))
		}
		if isRange {
			n := len(set.classes)
			set.classes = append(set.classes[:n-2], rangeClass{set.classes[n-2], set.classes[n-1]})
			isRange = false
		}
	}
}

func parseSeq(sc *scanner, top bool) *seqNode {
	seq := &seqNode{}
	if top && sc.peek() == '^' {
		sc.next()
		seq.mustHead = true
	}
	for {
		ch := sc.peek()
		switch ch {
		case '%':
			sc.save()
			sc.next()
			switch c := sc.peek(); {
			case c == '0':
				fail(sc.st.pos, "invalid capture index")
			case c >= '1' && c <= '9':
				seq.items = append(seq.items, numberNode{sc.next() - '0'})
			case c == 'b':
				sc.next()
				b := sc.next()
				e := sc.next()
				seq.items = append(seq.items, braceNode{b, e})
			default:
				sc.restore()
				seq.items = append(seq.items, singleNode{parseClass(sc, true)})
			}
		case '.', '[', ']':
			seq.items = append(seq.items, singleNode{parseClass(sc, true)})
		case ')':
			if top {
				fail(sc.st.pos, "invalid ')'")
			}
			return seq
		case '(':
			sc.next()
			if sc.peek() == ')' {
				sc.next()
				seq.items = append(seq.items, posCapNode{})
			} else {
				c := capNode{parseSeq(sc, false)}
				if sc.peek() != ')' {
					fail(sc.st.pos, "unfinished capture")
				}
				sc.next()
				seq.items = append(seq.items, c)
			}
		case '*', '+', '-', '?':
			sc.next()
			if n := len(seq.items); n > 0 {
				if s, ok := seq.items[n-1].(singleNode); ok {
					seq.items[n-1] = repeatNode{ch, s.cls}
					continue
				}
			}
			seq.items = append(seq.items, singleNode{charClass(ch)})
		case '$':
			if np := sc.nextPos(); top && (np == len(sc.src)-1 || np == eos) {
				seq.mustTail = true
			} else {
				seq.items = append(seq.items, singleNode{charClass(ch)})
			}
			sc.next()
		case eos:
			sc.next()
			return seq
		default:
			sc.next()
			seq.items = append(seq.items, singleNode{charClass(ch)})
		}
	}
}

type compiler struct {
	insts   []inst
	capture int
}

func (c *compiler) compile(n node) {
	switch p := n.(type) {
	case singleNode:
		c.insts = append(c.insts, inst{op: opChar, cls: p.cls})
	case *seqNode:
		for _, it := range p.items {
			c.compile(it)
		}
	case repeatNode:
		i := len(c.insts)
		switch p.kind {
		case '*':
			c.insts = append(c.insts, inst{op: opSplit, a: i + 1, b: i + 3}, inst{op: opChar, cls: p.cls}, inst{op: opJmp, a: i})
		case '+':
			c.insts = append(c.insts, inst{op: opChar, cls: p.cls}, inst{op: opSplit, a: i, b: i + 2})
		case '-':
			c.insts = append(c.insts, inst{op: opSplit, a: i + 3, b: i + 1}, inst{op: opChar, cls: p.cls}, inst{op: opJmp, a: i})
		case '?':
			c.insts = append(c.insts, inst{op: opSplit, a: i + 1, b: i + 2}, inst{op: opChar, cls: p.cls})
		}
	case posCapNode:
		c.insts = append(c.insts, inst{op: opPSave, a: c.capture})
		c.capture += 2
	case capNode:
		c0, c1 := c.capture, c.capture+1
		c.capture += 2
		c.insts = append(c.insts, inst{op: opSave, a: c0})
		c.compile(p.seq)
		c.insts = append(c.insts, inst{op: opSave, a: c1})
	case braceNode:
		c.insts = append(c.insts, inst{op: opBrace, a: p.begin, b: p.end})
	case numberNode:
		c.insts = append(c.insts, inst{op: opNumber, a: p.n})
	}
}
