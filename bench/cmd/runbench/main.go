// Command runbench times container start-up: it runs each command of a set
// in turn (A B C A B C ..., the starting one rotating every round, because
// the machine is noisy and drift must hit every command alike), and prints
// a markdown table of medians, p90s and ratios to chosen baselines.
//
// It replaces hyperfine here because hyperfine cannot alternate commands
// and "{n}" (a fresh number per run) gives runc and crun the unique
// container IDs they need without a wrapper shell, whose cost would pollute
// their timings.
//
//	runbench time [-runs N] [-warmup N] [-ratio runc,crun] [-out FILE] 'label=/abs/cmd arg {n}' ...
//	runbench bundle [-busybox /bin/busybox] [-cgroup /path] [-args "true"] [-root PATH] DIR
//	runbench floor
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == floorChildArg {
		// The re-executed child of "floor": in its new namespaces already.
		os.Exit(0)
	}
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "time":
		err = timeMain(os.Args[2:])
	case "bundle":
		err = bundleMain(os.Args[2:])
	case "floor":
		err = floor()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  runbench time [-runs N] [-warmup N] [-ratio label,...] [-out FILE] 'label=/path/cmd args ({n}: run number)' ...
  runbench bundle [-busybox PATH] [-cgroup PATH] [-args "CMD ARG..."] [-root PATH] DIR
      (busybox OCI bundle from "runc spec"; with -root, a config.json using that rootfs)
  runbench floor                                       (re-exec into new namespaces and exit)`)
	os.Exit(2)
}
