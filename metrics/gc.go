package metrics

import (
	"errors"
	"time"

	"github.com/nix-cached/cached/gc"
)

// Results of garbage collections and sweeps.
const (
	runOK = iota
	runFailed
	runSkipped
	numRunResults
)

// runResults are the result labels of collections and sweeps.
var runResults = [numRunResults]string{"ok", "failed", "skipped"}

// runResult classifies the error of a collection or sweep.
func runResult(err error) int {
	switch {
	case err == nil:
		return runOK
	case errors.Is(err, gc.ErrLocked):
		return runSkipped
	}
	return runFailed
}

// GCRun records a collection attempt that took took. A skipped one
// (gc.ErrLocked) is only counted; a failed one still counts what it
// removed before failing; the live gauges come from successful runs only.
func (m *Metrics) GCRun(res gc.Result, err error, took time.Duration) {
	if m == nil {
		return
	}
	r := runResult(err)
	m.gcRuns[r].Inc()
	if r == runSkipped {
		return
	}
	m.gcPaths.Add(float64(res.Removed))
	m.gcBytes.Add(float64(res.BytesRemoved))
	m.gcLastRun.Set(float64(m.now().UnixMilli()) / 1e3)
	m.gcLastDuration.Set(took.Seconds())
	if r == runOK {
		m.gcLivePaths.Set(float64(res.LivePaths))
		m.gcLiveBytes.Set(float64(res.LiveBytes))
	}
}

// Sweep records a sweep of unclaimed uploads and orphan blobs; a failed
// one still counts what it removed before failing.
func (m *Metrics) Sweep(res gc.SweepResult, err error) {
	if m == nil {
		return
	}
	r := runResult(err)
	m.sweepRuns[r].Inc()
	if r == runSkipped {
		return
	}
	m.sweepNARs.Add(float64(res.NARs))
	m.sweepBlobs.Add(float64(res.Blobs))
	m.sweepBytes.Add(float64(res.Bytes))
}
