package runtime

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// A seccomp compiler for the OCI profile (config-linux.md "Seccomp"):
// libseccomp would need cgo, so the classic-BPF program is assembled here.
// It is pure Go and unit-tested with a small BPF interpreter; loading it
// is seccomp_linux.go.
//
// Program shape (seccomp_data: nr at 0, arch at 4, args[i] at 16+8i, low
// word first on little-endian x86_64):
//
//	ld arch; jeq NATIVE ? skip : (ja nonNative)
//	ld nr;   jge 0x40000000 ? (ja nonNative) : skip  (x32 ABI numbers)
//	for each syscall with rules, in number order:
//	  ld nr; jeq NR ? body : (ja next syscall)
//	  body: each rule: its argument checks jump to the next rule on
//	        mismatch; all match -> ret ACTION
//	  (no rule matched) -> ret DEFAULT
//	ret DEFAULT
//	nonNative: ret DEFAULT if it denies, else ERRNO(ENOSYS)
//
// Only the native architecture's numbers are compiled (x86_64; the
// table is seccomp_sysnum_amd64.go, generated from golang.org/x/sys/unix
// with: grep SYS_ zsysnum_linux_amd64.go | awk '{print tolower(substr($1,5)), $3}').
// A 32-bit (i386 or x32) system call therefore never reaches the rules:
// it gets the default action when that denies, and ENOSYS when the default
// allows, so a profile cannot be bypassed through the other ABI. Names the
// table does not know (other architectures' calls in Docker's profile) are
// skipped, as libseccomp does.

// BPF opcodes (linux/filter.h, linux/bpf_common.h).
const (
	bpfLD          = 0x00
	bpfALU         = 0x04
	bpfJMP         = 0x05
	bpfRET         = 0x06
	bpfW           = 0x00
	bpfABS         = 0x20
	bpfAND         = 0x50
	bpfJA          = 0x00
	bpfJEQ         = 0x10
	bpfJGT         = 0x20
	bpfJGE         = 0x30
	bpfK           = 0x00
	auditArchX8664 = 0xc000003e
	x32SyscallBit  = 0x40000000
)

// Seccomp return values (linux/seccomp.h).
const (
	seccompRetKillProcess = 0x80000000
	seccompRetKillThread  = 0x00000000
	seccompRetTrap        = 0x00030000
	seccompRetErrno       = 0x00050000
	seccompRetUserNotif   = 0x7fc00000
	seccompRetTrace       = 0x7ff00000
	seccompRetLog         = 0x7ffc0000
	seccompRetAllow       = 0x7fff0000
	seccompRetData        = 0x0000ffff
)

const (
	errnoEPERM  = 1
	errnoENOSYS = 38
)

// sockFilter is one BPF instruction (struct sock_filter).
type sockFilter struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// SeccompActions lists the actions the compiler knows (for `features`).
var SeccompActions = []string{
	"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
	"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE",
}

// SeccompOperators lists the argument comparisons the compiler knows.
var SeccompOperators = []string{
	"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
	"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
}

// seccompAction maps an OCI action to a SECCOMP_RET value.
func seccompAction(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := func(def uint) uint32 {
		if errnoRet != nil {
			return uint32(*errnoRet) & seccompRetData
		}
		return uint32(def)
	}
	switch a {
	case specs.ActAllow:
		return seccompRetAllow, nil
	case specs.ActErrno:
		return seccompRetErrno | data(errnoEPERM), nil
	case specs.ActKill, specs.ActKillThread:
		return seccompRetKillThread, nil
	case specs.ActKillProcess:
		return seccompRetKillProcess, nil
	case specs.ActTrap:
		return seccompRetTrap, nil
	case specs.ActTrace:
		return seccompRetTrace | data(errnoEPERM), nil
	case specs.ActLog:
		return seccompRetLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp action %s: user-space notification is not supported", a)
	}
	return 0, fmt.Errorf("seccomp action %q: unknown", a)
}

// seccompRule is one OCI syscall entry applied to one syscall number.
type seccompRule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

// nativeSyscalls is the system call table, built on first use: a map
// literal of 470 entries would otherwise be built at the start of every cfs
// process and container init.
var nativeSyscalls = sync.OnceValue(nativeSyscallTable)

// compileSeccomp turns an OCI profile into a BPF program for the native
// architecture.
func compileSeccomp(s *specs.LinuxSeccomp) ([]sockFilter, error) {
	if len(nativeSyscalls()) == 0 {
		return nil, fmt.Errorf("seccomp: no system call table for this architecture")
	}
	def, err := seccompAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	if len(s.Architectures) > 0 && !hasNativeArch(s.Architectures) {
		return nil, fmt.Errorf("seccomp: architectures %v do not include this machine's (SCMP_ARCH_X86_64)", s.Architectures)
	}
	for _, f := range s.Flags {
		if _, ok := seccompFlagValues[f]; !ok {
			return nil, fmt.Errorf("seccomp flag %q: unknown", f)
		}
	}
	rules := map[int][]seccompRule{}
	for i, sc := range s.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d]: %w", i, err)
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp syscalls[%d]: argument index %d out of range", i, a.Index)
			}
			if _, ok := cmpOps[a.Op]; !ok {
				return nil, fmt.Errorf("seccomp syscalls[%d]: operator %q unknown", i, a.Op)
			}
		}
		if act == def && len(sc.Args) == 0 {
			continue // same as the default: nothing to compile
		}
		for _, name := range sc.Names {
			nr, ok := nativeSyscalls()[name]
			if !ok {
				continue
			}
			rules[nr] = append(rules[nr], seccompRule{action: act, args: sc.Args})
		}
	}
	nrs := make([]int, 0, len(rules))
	for nr := range rules {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)

	nonNative := def
	if def == seccompRetAllow || def == seccompRetLog {
		nonNative = seccompRetErrno | errnoENOSYS
	}
	var p prog
	// Conditional jumps reach 255 instructions at most: far targets go
	// through an unconditional ja (32-bit offset).
	p.ld(4)
	p.jump(bpfJEQ, auditArchX8664, 1, 0)
	p.ja("nonnative")
	p.ld(0)
	p.jump(bpfJGE, x32SyscallBit, 0, 1)
	p.ja("nonnative")
	for _, nr := range nrs {
		next := fmt.Sprintf("nr%d", nr)
		p.ld(0)
		p.jump(bpfJEQ, uint32(nr), 1, 0)
		p.ja(next)
		for ri, r := range rules[nr] {
			fail := fmt.Sprintf("nr%d.%d", nr, ri)
			for _, a := range r.args {
				p.cmpArg(a, fail)
			}
			p.ret(r.action)
			p.label(fail)
		}
		p.ret(def)
		p.label(next)
	}
	p.ret(def)
	p.label("nonnative")
	p.ret(nonNative)
	return p.link()
}

func hasNativeArch(archs []specs.Arch) bool {
	for _, a := range archs {
		if a == specs.ArchX86_64 {
			return true
		}
	}
	return false
}

// seccompFlagValues are the seccomp(2) filter flags a profile may ask for.
// TSYNC is accepted and ignored: the filter applies to the thread that
// forks the container's processes, on purpose (see seccomp_linux.go).
var seccompFlagValues = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              2,  // SECCOMP_FILTER_FLAG_LOG
	specs.LinuxSeccompFlagSpecAllow:        4,  // SECCOMP_FILTER_FLAG_SPEC_ALLOW
	specs.LinuxSeccompFlagWaitKillableRecv: 32, // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	"SECCOMP_FILTER_FLAG_TSYNC":            0,
}

// SeccompFlags lists the flags a profile may use (for `features`).
func SeccompFlags() []string {
	var out []string
	for f := range seccompFlagValues {
		out = append(out, string(f))
	}
	sort.Strings(out)
	return out
}

var cmpOps = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

// prog assembles BPF with symbolic forward jumps, resolved by link.
type prog struct {
	ins    []sockFilter
	fixups []fixup
	labels map[string]int
}

type fixup struct {
	at    int
	label string
	field byte // 't', 'f' or 'k' (ja)
}

func (p *prog) emit(f sockFilter) int { p.ins = append(p.ins, f); return len(p.ins) - 1 }

func (p *prog) ld(off uint32) { p.emit(sockFilter{Code: bpfLD | bpfW | bpfABS, K: off}) }

func (p *prog) ret(v uint32) { p.emit(sockFilter{Code: bpfRET | bpfK, K: v}) }

func (p *prog) and(mask uint32) { p.emit(sockFilter{Code: bpfALU | bpfAND | bpfK, K: mask}) }

func (p *prog) ja(label string) {
	at := p.emit(sockFilter{Code: bpfJMP | bpfJA})
	p.fixups = append(p.fixups, fixup{at: at, label: label, field: 'k'})
}

// jump emits a conditional jump; jt and jf are either a uint8 skip count
// or a label.
func (p *prog) jump(op uint16, k uint32, jt, jf any) {
	at := p.emit(sockFilter{Code: bpfJMP | op | bpfK, K: k})
	for _, x := range []struct {
		v     any
		field byte
	}{{jt, 't'}, {jf, 'f'}} {
		switch v := x.v.(type) {
		case int:
			if x.field == 't' {
				p.ins[at].Jt = uint8(v)
			} else {
				p.ins[at].Jf = uint8(v)
			}
		case string:
			p.fixups = append(p.fixups, fixup{at: at, label: v, field: x.field})
		}
	}
}

func (p *prog) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.ins)
}

func (p *prog) link() ([]sockFilter, error) {
	for _, f := range p.fixups {
		to, ok := p.labels[f.label]
		if !ok {
			return nil, fmt.Errorf("seccomp: internal error: label %q undefined", f.label)
		}
		off := to - f.at - 1
		if off < 0 {
			return nil, fmt.Errorf("seccomp: internal error: backward jump to %q", f.label)
		}
		switch f.field {
		case 'k':
			p.ins[f.at].K = uint32(off)
		default:
			if off > 255 {
				return nil, fmt.Errorf("seccomp: a rule is too long (jump of %d instructions)", off)
			}
			if f.field == 't' {
				p.ins[f.at].Jt = uint8(off)
			} else {
				p.ins[f.at].Jf = uint8(off)
			}
		}
	}
	if len(p.ins) > 4096 {
		return nil, fmt.Errorf("seccomp: program of %d instructions exceeds the kernel's 4096", len(p.ins))
	}
	return p.ins, nil
}

// cmpArg emits the checks of one argument condition; on mismatch it jumps
// to fail, on match it falls through. Arguments are 64-bit: the high word
// is compared first, the low word decides when the high words are equal.
func (p *prog) cmpArg(a specs.LinuxSeccompArg, fail string) {
	lo := 16 + 8*uint32(a.Index)
	hi := lo + 4
	vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
	// "match" means: skip to the instruction after this condition's block.
	// Blocks are built so that the match target is always the end.
	switch a.Op {
	case specs.OpEqualTo:
		p.ld(hi)
		p.jump(bpfJEQ, vhi, 0, fail)
		p.ld(lo)
		p.jump(bpfJEQ, vlo, 0, fail)
	case specs.OpNotEqual:
		// hi != vhi -> match (skip 2: ld lo, jeq lo).
		p.ld(hi)
		p.jump(bpfJEQ, vhi, 0, 2)
		p.ld(lo)
		p.jump(bpfJEQ, vlo, fail, 0)
	case specs.OpMaskedEqual:
		mlo, mhi := uint32(a.Value), uint32(a.Value>>32)
		vlo, vhi = uint32(a.ValueTwo), uint32(a.ValueTwo>>32)
		p.ld(hi)
		p.and(mhi)
		p.jump(bpfJEQ, vhi, 0, fail)
		p.ld(lo)
		p.and(mlo)
		p.jump(bpfJEQ, vlo, 0, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		// hi > vhi -> match (skip 3); hi < vhi -> fail; equal -> low word.
		p.ld(hi)
		p.jump(bpfJGT, vhi, 3, 0)
		p.jump(bpfJEQ, vhi, 0, fail)
		p.ld(lo)
		op := uint16(bpfJGT)
		if a.Op == specs.OpGreaterEqual {
			op = bpfJGE
		}
		p.jump(op, vlo, 0, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		// hi < vhi -> match (skip 3); hi > vhi -> fail; equal -> low word.
		p.ld(hi)
		p.jump(bpfJGE, vhi, 0, 3)
		p.jump(bpfJEQ, vhi, 0, fail)
		p.ld(lo)
		op := uint16(bpfJGE) // lo < vlo  <=>  !(lo >= vlo)
		if a.Op == specs.OpLessEqual {
			op = bpfJGT // lo <= vlo <=>  !(lo > vlo)
		}
		p.jump(op, vlo, fail, 0)
	}
}

// seccompSummary is a one-line description for the tracer.
func seccompSummary(s *specs.LinuxSeccomp, n int) string {
	var names int
	for _, sc := range s.Syscalls {
		names += len(sc.Names)
	}
	return fmt.Sprintf("default %s, %d rules over %d names, %d BPF instructions, flags [%s]",
		s.DefaultAction, len(s.Syscalls), names, n, strings.Join(flagStrings(s.Flags), ","))
}

func flagStrings(f []specs.LinuxSeccompFlag) []string {
	out := make([]string, len(f))
	for i, x := range f {
		out[i] = string(x)
	}
	return out
}
