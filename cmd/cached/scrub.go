package main

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/gc"
)

// scrubFlags are serve's settings of the background scrub.
type scrubFlags struct {
	rate     int64
	interval time.Duration
}

func addScrubFlags(fs *flag.FlagSet) *scrubFlags {
	f := &scrubFlags{rate: gc.DefaultScrubRate, interval: gc.DefaultScrubInterval}
	fs.Var(sizeFlag{&f.rate}, "scrub-rate", "re-read stored NARs in the background at this `rate` per second, quarantining damaged ones (0 turns the scrub off)")
	fs.Var(durationFlag{&f.interval}, "scrub-interval", "check each NAR again this long after its last check")
	return f
}

// scrubber returns the background scrub, and registers its counters with
// reg; nil when it is off.
func (f *scrubFlags) scrubber(b *backend, reg prometheus.Registerer, log *slog.Logger) (*gc.Scrubber, error) {
	if f.rate == 0 {
		return nil, nil
	}
	s, err := gc.NewScrubber(b.cat, b.store, gc.ScrubOptions{Rate: f.rate, Interval: f.interval, Logger: log})
	if err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name, help string
		value      func(gc.ScrubStats) int64
	}{
		{"cached_scrub_nars_total", "Stored NARs re-read and checked by the background scrub.", func(s gc.ScrubStats) int64 { return s.NARs }},
		{"cached_scrub_bytes_total", "Bytes of stored NAR files the background scrub re-read.", func(s gc.ScrubStats) int64 { return s.Bytes }},
		{"cached_scrub_damaged_total", "NARs the background scrub found damaged or missing, and quarantined.", func(s gc.ScrubStats) int64 { return s.Damaged }},
	} {
		value := c.value
		if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(value(s.Stats())) })); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return s, nil
}
