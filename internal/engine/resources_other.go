//go:build !linux

package engine

import (
	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
)

type otherFacts struct{}

func sysFacts() hostFacts { return otherFacts{} }

func (otherFacts) cgroupHost() (*cgroups.Host, error) { return cgroups.DetectHost() }
func (otherFacts) onlineCPUs() (string, error) {
	return "", errdefs.Unsupportedf("resource limits: only on Linux")
}
func (otherFacts) onlineMems() (string, error) {
	return "", errdefs.Unsupportedf("resource limits: only on Linux")
}
func (otherFacts) blockDevice(string) (int64, int64, error) {
	return 0, 0, errdefs.Unsupportedf("resource limits: only on Linux")
}
