package resign

import (
	"context"
	"errors"
	"fmt"

	"github.com/nix-cached/cached/catalog"
)

// follow checks what the change log names since this process last read
// it, when the state's key set is this process's.
func (r *Resigner) follow(ctx context.Context) error {
	n, err := r.followChanges(ctx, nil)
	if n > 0 {
		r.opt.Logger.Info("re-signing narinfos: re-signed paths published with other keys", "paths", n)
	}
	return err
}

// followChanges checks every path the change log names after r.seq, to
// its end, advancing r.seq, and returns how many it rewrote; page, if set,
// is told after each page of the log how many of its paths were
// rewritten.
func (r *Resigner) followChanges(ctx context.Context, page func(rewritten int64) error) (int64, error) {
	var total int64
	for {
		changes, err := r.cat.Changes(ctx, r.seq, changePage)
		if err != nil {
			return total, fmt.Errorf("resign: %w", err)
		}
		var n int64
		seen := map[string]bool{}
		for _, ch := range changes {
			if seen[ch.HashPart] {
				continue
			}
			seen[ch.HashPart] = true
			p, err := r.cat.Path(ctx, ch.HashPart)
			if errors.Is(err, catalog.ErrNotFound) {
				continue // deleted since
			} else if err != nil {
				return total, fmt.Errorf("resign: %w", err)
			}
			changed, err := r.check(ctx, p.HashPart, p.NarInfo, true)
			if err != nil {
				return total, err
			}
			if changed {
				n++
			}
		}
		total += n
		if len(changes) > 0 {
			r.seq = changes[len(changes)-1].Seq
			if page != nil {
				if err := page(n); err != nil {
					return total, err
				}
			}
		}
		if len(changes) < changePage {
			return total, nil
		}
	}
}

// check re-signs one path's narinfo, text as read, and reports whether it
// rewrote it; with pace, a rewrite counts against the rate (the walk
// paces every check itself). A narinfo that changed in between is read
// again; one that cannot be re-signed is logged and left alone.
func (r *Resigner) check(ctx context.Context, hashPart, text string, pace bool) (bool, error) {
	r.checked.Add(1)
	for range attempts {
		want, err := r.signer.Resign(text)
		if err != nil {
			r.opt.Logger.Warn("re-signing narinfos: cannot re-sign a path; left as it is", "hash", hashPart, "err", err)
			return false, nil
		}
		if want == text {
			return false, nil
		}
		if pace {
			if err := r.pace.wait(ctx); err != nil {
				return false, err
			}
		}
		err = r.cat.ReplaceNarInfo(ctx, hashPart, text, want)
		switch {
		case err == nil:
			r.rewritten.Add(1)
			return true, nil
		case errors.Is(err, catalog.ErrNotFound):
			return false, nil // deleted since
		case !errors.Is(err, catalog.ErrNarInfoChanged):
			return false, fmt.Errorf("resign: %w", err)
		}
		// Pushed meanwhile: re-sign what was pushed.
		p, err := r.cat.Path(ctx, hashPart)
		if errors.Is(err, catalog.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("resign: %w", err)
		}
		text = p.NarInfo
	}
	return false, fmt.Errorf("resign: the narinfo of %s changed %d times while it was re-signed", hashPart, attempts)
}
