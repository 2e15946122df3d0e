package resign

import (
	"context"
	"time"
)

// pacer spreads checks so that they average at most rate a second.
type pacer struct {
	rate  float64
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	start time.Time
	n     float64
}

// wait accounts one check and sleeps until the average rate since the
// pacer started (or last idled) is within bounds.
func (p *pacer) wait(ctx context.Context) error {
	now := p.now()
	if p.start.IsZero() || now.Sub(p.start.Add(time.Duration(p.n/p.rate*float64(time.Second)))) > time.Second {
		p.start, p.n = now, 0 // idle a while: do not burst to catch up
	}
	p.n++
	due := p.start.Add(time.Duration(p.n / p.rate * float64(time.Second)))
	if d := due.Sub(now); d > 0 {
		return p.sleep(ctx, d)
	}
	return ctx.Err()
}

// sleepFor sleeps for d or until ctx ends.
func sleepFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
