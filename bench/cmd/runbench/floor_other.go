//go:build !linux

package main

import "errors"

const floorChildArg = "__floor-child"

func floor() error { return errors.New("floor: namespaces need Linux") }
