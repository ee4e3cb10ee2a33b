package runtime

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The measurement reads gopher-lua's register stack through its layout;
// this fails if an upgrade of gopher-lua changes it.
func TestRegistersVisible(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	L.Push(lua.LString("marker-a"))
	L.Push(lua.LNumber(42))
	regs, capacity := registers(L)
	if registerOffset == 0 || len(regs) < 2 || capacity < len(regs) {
		t.Fatalf("registers not visible: offset %d, %d registers, capacity %d", registerOffset, len(regs), capacity)
	}
	if regs[len(regs)-2] != lua.LString("marker-a") || regs[len(regs)-1] != lua.LNumber(42) {
		t.Fatalf("top registers = %v, want marker-a, 42", regs[len(regs)-2:])
	}
}
