package cli

import (
	"reflect"
	"testing"
)

// TestCommandsRegistry: every word of commands builds a command of that
// name or alias, and every command's name and aliases are in commands.
func TestCommandsRegistry(t *testing.T) {
	same := func(a, b any) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	words := 0
	for _, f := range allCommands {
		c := f(&globals{})
		for _, w := range append([]string{c.Name()}, c.Aliases...) {
			words++
			if g, ok := commands[w]; !ok || !same(g, f) {
				t.Errorf("command %q: the word %q is not in commands, or builds another command", c.Name(), w)
			}
		}
	}
	if words != len(commands) {
		t.Errorf("commands has %d words, the commands answer to %d", len(commands), words)
	}
	for w, f := range commands {
		c := f(&globals{})
		if c.Name() != w && !c.HasAlias(w) {
			t.Errorf("commands[%q] builds %q", w, c.Name())
		}
	}
}
