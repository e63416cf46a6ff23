package runtime

import (
	"encoding/binary"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// runBPF interprets the subset of classic BPF the compiler emits over a
// struct seccomp_data.
func runBPF(t *testing.T, prog []sockFilter, nr int, arch uint32, args [6]uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], uint32(nr))
	binary.LittleEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case bpfLD | bpfW | bpfABS:
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case bpfALU | bpfAND | bpfK:
			acc &= in.K
		case bpfJMP | bpfJA:
			pc += int(in.K)
		case bpfJMP | bpfJEQ | bpfK, bpfJMP | bpfJGT | bpfK, bpfJMP | bpfJGE | bpfK:
			var cond bool
			switch in.Code &^ (bpfJMP | bpfK) {
			case bpfJEQ:
				cond = acc == in.K
			case bpfJGT:
				cond = acc > in.K
			case bpfJGE:
				cond = acc >= in.K
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case bpfRET | bpfK:
			return in.K
		default:
			t.Fatalf("unknown opcode %#x at %d", in.Code, pc)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}

func u(v uint) *uint { return &v }

func TestCompileSeccomp(t *testing.T) {
	prof := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "no_such_call"}, Action: specs.ActAllow},
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: u(13)},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
			{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpNotEqual}}},
			{Names: []string{"dup"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1 << 33, Op: specs.OpGreaterThan}}},
			{Names: []string{"dup2"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 100, Op: specs.OpLessEqual}}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
			{Names: []string{"mkdir"}, Action: specs.ActKillProcess},
		},
	}
	prog, err := compileSeccomp(prof)
	if err != nil {
		t.Fatal(err)
	}
	const native = auditArchX8664
	eperm := uint32(seccompRetErrno | 1)
	cases := []struct {
		name string
		nr   int
		arch uint32
		args [6]uint64
		want uint32
	}{
		{"allowed", nativeSyscalls()["read"], native, [6]uint64{}, seccompRetAllow},
		{"default", nativeSyscalls()["open"], native, [6]uint64{}, eperm},
		{"errnoRet", nativeSyscalls()["getcwd"], native, [6]uint64{}, seccompRetErrno | 13},
		{"eq first rule", nativeSyscalls()["personality"], native, [6]uint64{0xffffffff}, seccompRetAllow},
		{"eq second rule", nativeSyscalls()["personality"], native, [6]uint64{8}, seccompRetAllow},
		{"eq no rule", nativeSyscalls()["personality"], native, [6]uint64{1}, eperm},
		{"eq high word differs", nativeSyscalls()["personality"], native, [6]uint64{1<<32 | 8}, eperm},
		{"ne match", nativeSyscalls()["kill"], native, [6]uint64{1, 15}, seccompRetAllow},
		{"ne mismatch", nativeSyscalls()["kill"], native, [6]uint64{1, 9}, eperm},
		{"ne high word", nativeSyscalls()["kill"], native, [6]uint64{1, 1<<32 | 9}, seccompRetAllow},
		{"gt above", nativeSyscalls()["dup"], native, [6]uint64{1<<33 + 1}, seccompRetAllow},
		{"gt equal", nativeSyscalls()["dup"], native, [6]uint64{1 << 33}, eperm},
		{"gt high above", nativeSyscalls()["dup"], native, [6]uint64{1 << 34}, seccompRetAllow},
		{"gt below", nativeSyscalls()["dup"], native, [6]uint64{5}, eperm},
		{"le equal", nativeSyscalls()["dup2"], native, [6]uint64{100}, seccompRetAllow},
		{"le below", nativeSyscalls()["dup2"], native, [6]uint64{3}, seccompRetAllow},
		{"le above", nativeSyscalls()["dup2"], native, [6]uint64{101}, eperm},
		{"le high word", nativeSyscalls()["dup2"], native, [6]uint64{1 << 32}, eperm},
		{"masked eq", nativeSyscalls()["clone"], native, [6]uint64{0x11}, seccompRetAllow},
		{"masked ne", nativeSyscalls()["clone"], native, [6]uint64{0x10000000}, eperm},
		{"kill process", nativeSyscalls()["mkdir"], native, [6]uint64{}, seccompRetKillProcess},
		{"i386 gets the default", 3, 0x40000003, [6]uint64{}, eperm},
		{"x32 gets the default", nativeSyscalls()["read"] | x32SyscallBit, native, [6]uint64{}, eperm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := runBPF(t, prog, tc.nr, tc.arch, tc.args); got != tc.want {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestCompileSeccompAllowDefault(t *testing.T) {
	prog, err := compileSeccomp(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := runBPF(t, prog, nativeSyscalls()["getcwd"], auditArchX8664, [6]uint64{}); got != seccompRetErrno|1 {
		t.Errorf("getcwd: %#x", got)
	}
	if got := runBPF(t, prog, nativeSyscalls()["read"], auditArchX8664, [6]uint64{}); got != seccompRetAllow {
		t.Errorf("read: %#x", got)
	}
	// The other ABI cannot bypass a deny rule of an allow-by-default profile.
	if got := runBPF(t, prog, 183, 0x40000003, [6]uint64{}); got != seccompRetErrno|errnoENOSYS {
		t.Errorf("i386: %#x, want ENOSYS", got)
	}
}

// A Docker-sized profile (over 300 names) must fit and link.
func TestCompileSeccompLarge(t *testing.T) {
	var names []string
	for n := range nativeSyscalls() {
		names = append(names, n)
	}
	prog, err := compileSeccomp(&specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for n, nr := range nativeSyscalls() {
		if got := runBPF(t, prog, nr, auditArchX8664, [6]uint64{}); got != seccompRetAllow {
			t.Fatalf("%s: %#x", n, got)
		}
	}
}

func TestCompileSeccompErrors(t *testing.T) {
	for name, p := range map[string]*specs.LinuxSeccomp{
		"notify":       {DefaultAction: specs.ActNotify},
		"bad action":   {DefaultAction: "SCMP_ACT_NOPE"},
		"bad operator": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_NOPE"}}}}},
		"bad index":    {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		"foreign arch": {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchAARCH64}},
		"bad flag":     {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"}},
	} {
		if _, err := compileSeccomp(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
