package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed paths.lua
var pathsLua []byte

// load is what one wrk run measured.
type load struct {
	Requests  int64   `json:"requests"`
	Seconds   float64 `json:"seconds"`
	Bytes     int64   `json:"bytes"`
	Errors    int64   `json:"errors"` // connect, read, write and timeout errors
	NotOK     int64   `json:"not_ok"` // responses with a status above 399
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
}

func (l load) RPS() float64 { return float64(l.Requests) / l.Seconds }

// MBps is the throughput of response bytes (headers included) in MB/s.
func (l load) MBps() float64 { return float64(l.Bytes) / l.Seconds / 1e6 }

// wrk drives base with conns connections for d, each request for the next
// of the URL paths listed in the file paths (one per line, cycled from a
// different start in each thread). wrk gets one thread per core, up to one
// per connection: it shares the machine with the server, as in the
// published figures.
func (b *bench) wrk(ctx context.Context, base string, conns int, d time.Duration, paths string) (load, error) {
	script := filepath.Join(b.work, "paths.lua")
	if _, err := os.Stat(script); err != nil {
		if err := os.WriteFile(script, pathsLua, 0o644); err != nil {
			return load{}, err
		}
	}
	threads := min(conns, b.cores)
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%.0fs", d.Seconds()), "--timeout", "10s", "-s", script, base, "--", paths)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return load{}, fmt.Errorf("wrk %s: %w\n%s", base, err, out)
	}
	return parseWrk(out)
}

// parseWrk finds the JSON line that paths.lua's done() prints.
func parseWrk(out []byte) (load, error) {
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "{") {
			var l load
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				return load{}, fmt.Errorf("wrk result %q: %w", line, err)
			}
			if l.Seconds <= 0 || l.Requests == 0 {
				return load{}, fmt.Errorf("wrk made no requests:\n%s", out)
			}
			return l, nil
		}
	}
	return load{}, fmt.Errorf("no result in wrk's output:\n%s", out)
}
