package cli

import (
	"reflect"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandsRegistry: every word of commands and transferCommands builds
// a command of that name or alias, every command's name and aliases are in
// them, and helpOrder names each command once.
func TestCommandsRegistry(t *testing.T) {
	same := func(a, b any) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	words := 0
	seen := map[string]bool{}
	for _, name := range helpOrder {
		if seen[name] {
			t.Errorf("helpOrder names %q twice", name)
		}
		seen[name] = true
		f, ok := command(name)
		if !ok {
			t.Errorf("helpOrder names %q, which no command answers to", name)
			continue
		}
		c := f(&globals{})
		if c.Name() != name {
			t.Errorf("helpOrder names %q, whose command is %q", name, c.Name())
		}
		for _, w := range append([]string{c.Name()}, c.Aliases...) {
			words++
			if g, ok := command(w); !ok || !same(g, f) {
				t.Errorf("command %q: the word %q is not registered, or builds another command", c.Name(), w)
			}
		}
	}
	if n := len(commands) + len(transferCommands); words != n {
		t.Errorf("the registries have %d words, the commands answer to %d", n, words)
	}
	for _, m := range []map[string]func(*globals) *cobra.Command{commands, transferCommands} {
		for w, f := range m {
			c := f(&globals{})
			if c.Name() != w && !c.HasAlias(w) {
				t.Errorf("the word %q builds %q", w, c.Name())
			}
		}
	}
}

// TestTransferShort: the lean front end lists the transfer commands with
// the words of transferShort, which must be the full commands' own.
func TestTransferShort(t *testing.T) {
	if len(transferShort) != len(transferCommands) {
		t.Errorf("transferShort has %d commands, transferCommands %d", len(transferShort), len(transferCommands))
	}
	for w, f := range transferCommands {
		if got, want := transferShort[w], f(&globals{}).Short; got != want {
			t.Errorf("transferShort[%q] = %q, the command says %q", w, got, want)
		}
	}
}
