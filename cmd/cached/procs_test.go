package main

import "testing"

func TestServeProcs(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		flag                  int
		env                   bool
		current, numCPU, want int
	}{
		{"a whole machine", 0, false, 2, 2, 8},
		{"a bigger machine", 0, false, 16, 16, 64},
		{"a CPU quota", 0, false, 2, 16, 2},
		{"GOMAXPROCS in the environment", 0, true, 3, 16, 3},
		{"GOMAXPROCS equal to the CPUs", 0, true, 2, 2, 2},
		{"--procs", 5, false, 2, 2, 5},
		{"--procs over the environment", 5, true, 3, 2, 5},
	} {
		if got := serveProcs(tc.flag, tc.env, tc.current, tc.numCPU); got != tc.want {
			t.Errorf("%s: serveProcs(%d, %v, %d, %d) = %d, want %d",
				tc.name, tc.flag, tc.env, tc.current, tc.numCPU, got, tc.want)
		}
	}
}
