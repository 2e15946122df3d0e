package main

import (
	"os"
	"runtime"
)

// procsPerCPU is how many Go processors serve runs per CPU by default.
// With one per CPU, a thread the kernel takes off its core for another
// process (a proxy, a build, a load generator) holds up the goroutines
// queued on its processor until it runs again, a scheduler slice of
// milliseconds. Measured by hand on 2 cores shared with wrk, narinfo hits
// over 16 connections: p99 4.3-7.1 ms with 2 processors, 1.6-2.9 ms with
// 8, at the same throughput. The price is one NAR stream, which runs a
// little faster with fewer processors (README, Configuration).
const procsPerCPU = 4

// serveProcs returns the GOMAXPROCS for serve: flagProcs when positive,
// the runtime's choice when GOMAXPROCS is set in the environment or when
// that choice is below the CPUs the process may use (a CPU quota, as in a
// container with a limit: more threads than the quota would only be
// throttled), and procsPerCPU times the CPUs otherwise.
func serveProcs(flagProcs int, envSet bool, current, numCPU int) int {
	switch {
	case flagProcs > 0:
		return flagProcs
	case envSet || current < numCPU:
		return current
	}
	return procsPerCPU * numCPU
}

// setServeProcs applies serveProcs to this process and returns it.
func setServeProcs(flagProcs int) int {
	_, envSet := os.LookupEnv("GOMAXPROCS")
	n := serveProcs(flagProcs, envSet, runtime.GOMAXPROCS(0), runtime.NumCPU())
	runtime.GOMAXPROCS(n)
	return n
}
