package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/catalog"
)

// CatalogEvery bounds how often a scrape reads the catalog's totals: they
// cost a scan of the NAR records, and several scrapers (or replicas) may
// ask at once.
const CatalogEvery = 30 * time.Second

// catalogTimeout bounds one read of the catalog's totals.
const catalogTimeout = 5 * time.Second

// Catalog makes the gauges of what the catalog holds (cached_stored_*,
// cached_unclaimed_*, cached_pins) and of the last garbage collection it
// recorded, wherever it ran (this server, another replica, or `cached
// gc`), read from cat at most every CatalogEvery.
func (m *Metrics) Catalog(cat catalog.Catalog) {
	if m != nil {
		m.catalog.Store(&catalogReader{cat: cat, now: m.now})
	}
}

// catalogReader caches the catalog's totals between scrapes.
type catalogReader struct {
	cat catalog.Catalog
	now func() time.Time

	mu      sync.Mutex
	read    time.Time
	ok      bool
	stats   catalog.Stats
	lastGC  catalog.GCRun
	everGCd bool
}

// snapshot returns the totals, reading them again when they are older
// than CatalogEvery; ok is false when the catalog could not be read.
func (c *catalogReader) snapshot() (stats catalog.Stats, last catalog.GCRun, gcd, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.read) >= CatalogEvery || !c.ok {
		c.read = now
		ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
		defer cancel()
		s, err := c.cat.Stats(ctx, now, nil)
		c.ok = err == nil
		if c.ok {
			c.stats = s
		}
		run, err := c.cat.LastGCRun(ctx)
		switch {
		case err == nil:
			c.lastGC, c.everGCd = run, true
		case errors.Is(err, catalog.ErrNotFound):
			c.everGCd = false
		default:
			c.ok = false
		}
	}
	return c.stats, c.lastGC, c.everGCd, c.ok
}

// catalogGauges are the gauges of Catalog: -1 until Catalog is called,
// or when the catalog cannot be read.
func (m *Metrics) catalogGauges() []prometheus.Collector {
	stat := func(name, help string, pick func(catalog.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			c := m.catalog.Load()
			if c == nil {
				return -1
			}
			s, _, _, ok := c.snapshot()
			if !ok {
				return -1
			}
			return pick(s)
		})
	}
	lastGC := func(name, help string, pick func(catalog.GCRun) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			c := m.catalog.Load()
			if c == nil {
				return -1
			}
			_, run, gcd, ok := c.snapshot()
			if !ok || !gcd {
				return -1
			}
			return pick(run)
		})
	}
	const every = " Read from the catalog at most every 30 s; -1 when it cannot be read."
	const wherever = " Of the last collection the catalog recorded, wherever it ran (a replica or cached gc); -1 before the first."
	return []prometheus.Collector{
		stat("cached_stored_paths", "Published store paths."+every, func(s catalog.Stats) float64 { return float64(s.Paths) }),
		stat("cached_stored_nars", "NAR files named by published paths."+every, func(s catalog.Stats) float64 { return float64(s.NARs) }),
		stat("cached_stored_bytes", "Bytes of the NAR files named by published paths."+every, func(s catalog.Stats) float64 { return float64(s.Bytes) }),
		stat("cached_unclaimed_nars", "Uploaded NARs that no narinfo claims (yet)."+every, func(s catalog.Stats) float64 { return float64(s.UnclaimedNARs) }),
		stat("cached_unclaimed_bytes", "Bytes of the unclaimed NARs."+every, func(s catalog.Stats) float64 { return float64(s.UnclaimedBytes) }),
		stat("cached_pins", "Pins (named roots)."+every, func(s catalog.Stats) float64 { return float64(s.Pins) }),
		lastGC("cached_gc_recorded_finished_timestamp_seconds", "Unix time at which it ended."+wherever,
			func(r catalog.GCRun) float64 { return float64(r.Finished.UnixMilli()) / 1e3 }),
		lastGC("cached_gc_recorded_duration_seconds", "How long it took."+wherever,
			func(r catalog.GCRun) float64 { return r.Finished.Sub(r.Started).Seconds() }),
		lastGC("cached_gc_recorded_removed_paths", "Paths it removed."+wherever, func(r catalog.GCRun) float64 { return float64(r.PathsRemoved) }),
		lastGC("cached_gc_recorded_removed_bytes", "Bytes it freed."+wherever, func(r catalog.GCRun) float64 { return float64(r.BytesRemoved) }),
		lastGC("cached_gc_recorded_live_paths", "Paths it kept."+wherever, func(r catalog.GCRun) float64 { return float64(r.LivePaths) }),
		lastGC("cached_gc_recorded_live_bytes", "Bytes it kept."+wherever, func(r catalog.GCRun) float64 { return float64(r.LiveBytes) }),
		lastGC("cached_gc_recorded_failed", "1 if it failed, 0 if it completed."+wherever, func(r catalog.GCRun) float64 {
			if r.Error != "" {
				return 1
			}
			return 0
		}),
	}
}
