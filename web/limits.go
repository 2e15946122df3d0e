package web

import (
	"context"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// StatsTTL is how long the pages show the same counts of the catalog:
// counting reads every path, and on a public cache anyone may ask for
// the front page.
const StatsTTL = 30 * time.Second

// maxHeavy bounds the requests that read many rows at once (a search
// reads every path's name, a path page walks a closure); others wait.
const maxHeavy = 4

// statsCache keeps the last Stats. lock is a mutex that a waiting
// request can give up on.
type statsCache struct {
	lock chan struct{}
	at   time.Time // when st was counted; zero: never
	st   catalog.Stats
}

// stats returns the catalog's Stats, with the usedAges buckets, counted
// at most StatsTTL ago, and when they were counted. One request counts
// while the others wait for its answer.
func (u *UI) stats(ctx context.Context) (catalog.Stats, time.Time, error) {
	select {
	case u.sc.lock <- struct{}{}:
	case <-ctx.Done():
		return catalog.Stats{}, time.Time{}, fmt.Errorf("web: waiting for stats: %w", ctx.Err())
	}
	defer func() { <-u.sc.lock }()
	now := u.now()
	if !u.sc.at.IsZero() && !now.Before(u.sc.at) && now.Sub(u.sc.at) < StatsTTL {
		return u.sc.st, u.sc.at, nil
	}
	ages := make([]time.Duration, len(usedAges))
	for i, a := range usedAges {
		ages[i] = a.age
	}
	st, err := u.cat.Stats(ctx, now, ages)
	if err != nil {
		return catalog.Stats{}, time.Time{}, fmt.Errorf("web: stats: %w", err)
	}
	u.sc.at, u.sc.st = now, st
	return st, now, nil
}

// heavy runs fn once fewer than maxHeavy other heavy requests run.
func (u *UI) heavy(ctx context.Context, fn func() error) error {
	select {
	case u.heavySlots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("web: waiting for a turn: %w", ctx.Err())
	}
	defer func() { <-u.heavySlots }()
	return fn()
}
