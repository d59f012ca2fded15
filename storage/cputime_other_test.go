//go:build !unix

package storage

import "time"

func processCPU() time.Duration { return 0 }
