package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// quarantinedHashes returns the hash parts Quarantined lists.
func quarantinedHashes(t *testing.T, c catalog.Catalog) []string {
	t.Helper()
	qs, err := c.Quarantined(context.Background())
	must(t, "Quarantined", err)
	var hs []string
	for _, q := range qs {
		hs = append(hs, q.HashPart)
	}
	return hs
}

// TestRaceQuarantinePublishReferrer publishes a path referencing another
// while that other's NAR is quarantined: either the referrer is published
// first and hidden with it, or the quarantine is first and the
// publication misses the hidden reference. Never is a referrer of a
// hidden path served. Once the NAR is uploaded again, both are served as
// they are pushed again.
func TestRaceQuarantinePublishReferrer(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		depNAR, appNAR := newNAR(fmt.Sprint("qdep", i), t0), newNAR(fmt.Sprint("qapp", i), t0)
		dep := newPath(fmt.Sprint("qdep", i), depNAR)
		app := newPath(fmt.Sprint("qapp", i), appNAR, fmt.Sprint("qdep", i))
		publish(t, a, depNAR, dep)
		must(t, "PutNAR", a.PutNAR(ctx, appNAR))

		var pubErr, qErr error
		var hidden []string
		race(func() { pubErr = a.Publish(ctx, app, catalog.PublishOptions{}) },
			func() { hidden, qErr = b.Quarantine(ctx, depNAR.Key, "lost", t0) })
		slices.Sort(hidden)
		switch {
		case qErr != nil:
			t.Fatalf("round %d: Quarantine: %v", i, qErr)
		case pubErr == nil && slices.Equal(hidden, sortedOf(dep.HashPart, app.HashPart)):
			seen["publication first"]++
		case errors.Is(pubErr, catalog.ErrMissingReferences) && slices.Equal(hidden, []string{dep.HashPart}):
			seen["quarantine first"]++
			if _, err := b.Path(ctx, app.HashPart); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("round %d: the refused referrer is recorded: %v", i, err)
			}
		default:
			t.Fatalf("round %d: Publish: %v; Quarantine hid %v", i, pubErr, hidden)
		}
		checkGone(t, b, dep.HashPart, app.HashPart)
		// The upload alone shows nothing; pushing both again does.
		must(t, "PutNAR", a.PutNAR(ctx, depNAR))
		checkGone(t, b, dep.HashPart, app.HashPart)
		must(t, "Publish", b.Publish(ctx, dep, catalog.PublishOptions{}))
		must(t, "Publish", a.Publish(ctx, app, catalog.PublishOptions{}))
		checkPublished(t, b, dep.HashPart, app.HashPart)
		if q := quarantinedHashes(t, b); len(q) != 0 {
			t.Fatalf("round %d: after pushing again, Quarantined lists %v", i, q)
		}
	}
	seen.seenBoth(t, "publication first", "quarantine first")
}

// sortedOf returns its arguments sorted.
func sortedOf(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestRaceQuarantineRepublish moves the only path naming a NAR to another
// NAR while that NAR is quarantined: whichever comes first, the path is
// served in the end and nothing stays hidden (its new NAR is sound and it
// references nothing hidden).
func TestRaceQuarantineRepublish(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		n := newNAR(fmt.Sprint("qold", i), t0)
		p := newPath(fmt.Sprint("qrep", i), n)
		publish(t, a, n, p)
		other := n
		other.Key, other.ListingKey = "nar/"+fakeHash(fmt.Sprint("qnew", i), 52)+".nar.zst", ""
		must(t, "PutNAR", a.PutNAR(ctx, other))
		moved := p
		moved.NARKey = other.Key

		var pubErr, qErr error
		var hidden []string
		race(func() { pubErr = a.Publish(ctx, moved, catalog.PublishOptions{}) },
			func() { hidden, qErr = b.Quarantine(ctx, n.Key, "lost", t0) })
		if pubErr != nil || qErr != nil {
			t.Fatalf("round %d: Publish: %v; Quarantine: %v", i, pubErr, qErr)
		}
		switch {
		case len(hidden) == 0:
			seen["publication first"]++
		case slices.Equal(hidden, []string{p.HashPart}):
			seen["quarantine first"]++
		default:
			t.Fatalf("round %d: Quarantine hid %v", i, hidden)
		}
		checkPublished(t, b, p.HashPart)
		if q := quarantinedHashes(t, b); len(q) != 0 {
			t.Fatalf("round %d: Quarantined lists %v, want nothing", i, q)
		}
		if got, err := b.LookupNAR(ctx, n.Key); err != nil || !got.Quarantined {
			t.Fatalf("round %d: LookupNAR of the old NAR = %+v, %v; want it quarantined", i, got, err)
		}
	}
	seen.seenBoth(t, "publication first", "quarantine first")
}

// TestRaceQuarantineMoveTo moves a path to another NAR while that other
// NAR is quarantined. If the publication comes first, the path is hidden
// with the rest; if the quarantine does, the publication is refused
// (ErrNARNotFound: a quarantined NAR must be uploaded again) and the path
// keeps its old NAR, served or hidden as it was.
func TestRaceQuarantineMoveTo(t *testing.T) {
	for _, wasHidden := range []bool{false, true} {
		t.Run(fmt.Sprint("hidden=", wasHidden), func(t *testing.T) {
			a, b := twoReplicas(t)
			ctx := context.Background()
			seen := outcomes{}
			for i := range raceRounds {
				n := newNAR(fmt.Sprint("qfrom", i), t0)
				p := newPath(fmt.Sprint("qmove", i), n)
				publish(t, a, n, p)
				if wasHidden {
					hidden, err := a.Quarantine(ctx, n.Key, "lost", t0)
					if err != nil || !slices.Equal(hidden, []string{p.HashPart}) {
						t.Fatalf("round %d: Quarantine of the old NAR = %v, %v", i, hidden, err)
					}
				}
				to := n
				to.Key, to.ListingKey = "nar/"+fakeHash(fmt.Sprint("qto", i), 52)+".nar.zst", ""
				must(t, "PutNAR", a.PutNAR(ctx, to))
				moved := p
				moved.NARKey = to.Key

				var pubErr, qErr error
				var hidden []string
				race(func() { pubErr = a.Publish(ctx, moved, catalog.PublishOptions{}) },
					func() { hidden, qErr = b.Quarantine(ctx, to.Key, "damaged", t0) })
				if qErr != nil || (pubErr != nil && !errors.Is(pubErr, catalog.ErrNARNotFound)) {
					t.Fatalf("round %d: Publish: %v; Quarantine: %v", i, pubErr, qErr)
				}
				want := to.Key
				switch {
				case pubErr == nil && slices.Equal(hidden, []string{p.HashPart}):
					seen["publication first"]++
				case pubErr != nil && len(hidden) == 0:
					seen["quarantine first"]++
					want = n.Key
				default:
					t.Fatalf("round %d: Publish: %v, and Quarantine hid %v", i, pubErr, hidden)
				}
				if got, err := b.Path(ctx, p.HashPart); err != nil || got.NARKey != want {
					t.Fatalf("round %d: Path = %+v, %v; want it on %s", i, got, err, want)
				}
				q := quarantinedHashes(t, b)
				if wasHidden || pubErr == nil {
					checkGone(t, b, p.HashPart)
					if !slices.Equal(q, []string{p.HashPart}) {
						t.Fatalf("round %d: Quarantined lists %v, want %s", i, q, p.HashPart)
					}
				} else {
					checkPublished(t, b, p.HashPart)
					if len(q) != 0 {
						t.Fatalf("round %d: Quarantined lists %v, want nothing", i, q)
					}
				}
				// Uploaded again and pushed again, it is served.
				must(t, "PutNAR", a.PutNAR(ctx, to))
				must(t, "Publish", a.Publish(ctx, moved, catalog.PublishOptions{}))
				checkPublished(t, b, p.HashPart)
			}
			seen.seenBoth(t, "publication first", "quarantine first")
		})
	}
}

// TestRaceRepublishReferrer pushes again, at once, a path and its
// referrer that a quarantine hid, once the path's NAR was uploaded again:
// the referrer is shown only once the path is, so either both are served
// or the referrer is refused (or, when the closure may be incomplete,
// left hidden) because the path was still hidden.
func TestRaceRepublishReferrer(t *testing.T) {
	for _, incomplete := range []bool{false, true} {
		t.Run(fmt.Sprint("incomplete=", incomplete), func(t *testing.T) {
			a, b := twoReplicas(t)
			ctx := context.Background()
			seen := outcomes{}
			for i := range raceRounds {
				depNAR, appNAR := newNAR(fmt.Sprint("rdep", i), t0), newNAR(fmt.Sprint("rapp", i), t0)
				dep := newPath(fmt.Sprint("rdep", i), depNAR)
				app := newPath(fmt.Sprint("rapp", i), appNAR, fmt.Sprint("rdep", i))
				publish(t, a, depNAR, dep)
				publish(t, a, appNAR, app)
				if hidden, err := a.Quarantine(ctx, depNAR.Key, "lost", t0); err != nil || len(hidden) != 2 {
					t.Fatalf("round %d: Quarantine = %v, %v; want both hidden", i, hidden, err)
				}
				must(t, "PutNAR", a.PutNAR(ctx, depNAR))

				var depErr, appErr error
				race(func() { depErr = a.Publish(ctx, dep, catalog.PublishOptions{}) },
					func() {
						appErr = b.Publish(ctx, app, catalog.PublishOptions{AllowIncompleteClosure: incomplete})
					})
				must(t, "Publish of the reference", depErr)
				checkPublished(t, b, dep.HashPart)
				_, served := b.NarInfo(ctx, app.HashPart)
				switch {
				case appErr == nil && served == nil:
					seen["reference first"]++
				case !incomplete && errors.Is(appErr, catalog.ErrMissingReferences),
					incomplete && appErr == nil && errors.Is(served, catalog.ErrNotFound):
					seen["referrer first"]++
					checkGone(t, b, app.HashPart)
					must(t, "Publish of the referrer", b.Publish(ctx, app, catalog.PublishOptions{}))
					checkPublished(t, b, app.HashPart)
				default:
					t.Fatalf("round %d: Publish of the referrer: %v; NarInfo: %v", i, appErr, served)
				}
				if q := quarantinedHashes(t, b); len(q) != 0 {
					t.Fatalf("round %d: Quarantined lists %v, want nothing", i, q)
				}
			}
			seen.seenBoth(t, "reference first", "referrer first")
		})
	}
}

// TestRaceQuarantinePutNAR uploads a NAR again while it is quarantined:
// either way its path is hidden, and the NAR is quarantined in the end
// only if the upload came first. Pushed again, the path is served only
// then if the NAR is not quarantined.
func TestRaceQuarantinePutNAR(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		n := newNAR(fmt.Sprint("qput", i), t0)
		p := newPath(fmt.Sprint("qput", i), n)
		publish(t, a, n, p)

		var putErr, qErr error
		var hidden []string
		race(func() { putErr = a.PutNAR(ctx, n) },
			func() { hidden, qErr = b.Quarantine(ctx, n.Key, "lost", t0) })
		if putErr != nil || qErr != nil {
			t.Fatalf("round %d: PutNAR: %v; Quarantine: %v", i, putErr, qErr)
		}
		got, err := b.LookupNAR(ctx, n.Key)
		must(t, "LookupNAR", err)
		if q := quarantinedHashes(t, b); !slices.Equal(hidden, []string{p.HashPart}) ||
			!slices.Equal(q, []string{p.HashPart}) {
			t.Fatalf("round %d: Quarantine hid %v, Quarantined lists %v; want %s", i, hidden, q, p.HashPart)
		}
		checkGone(t, b, p.HashPart)
		if got.Quarantined {
			seen["upload first"]++
			if err := a.Publish(ctx, p, catalog.PublishOptions{}); !errors.Is(err, catalog.ErrNARNotFound) {
				t.Fatalf("round %d: Publish over the quarantined NAR: %v, want ErrNARNotFound", i, err)
			}
			checkGone(t, b, p.HashPart)
			must(t, "PutNAR", a.PutNAR(ctx, n))
			must(t, "Publish", a.Publish(ctx, p, catalog.PublishOptions{}))
		} else {
			must(t, "Publish", a.Publish(ctx, p, catalog.PublishOptions{}))
			seen["quarantine first"]++
		}
		checkPublished(t, b, p.HashPart)
	}
	seen.seenBoth(t, "upload first", "quarantine first")
}

// TestPutNARLeavesChangeLog checks that no upload writes the change log
// (nor waits for its lock), not even one of a quarantined NAR, which
// clears its mark but shows nothing: the paths it hid are recorded as
// each is published again.
func TestPutNARLeavesChangeLog(t *testing.T) {
	c := openT(t)
	ctx := context.Background()
	n := newNAR("quiet", t0)
	p := newPath("quiet", n)
	publish(t, c, n, p)
	before, err := c.LastChange(ctx)
	must(t, "LastChange", err)
	must(t, "PutNAR", c.PutNAR(ctx, n))
	if after, err := c.LastChange(ctx); err != nil || after != before {
		t.Fatalf("LastChange after a plain upload = %d, %v; want %d", after, err, before)
	}
	if _, err := c.Quarantine(ctx, n.Key, "lost", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	seq, err := c.LastChange(ctx)
	must(t, "LastChange", err)
	must(t, "PutNAR", c.PutNAR(ctx, n, "alias/quiet"))
	if after, err := c.LastChange(ctx); err != nil || after != seq {
		t.Fatalf("LastChange after the upload of a quarantined NAR = %d, %v; want %d", after, err, seq)
	}
	if got, err := c.LookupNAR(ctx, "alias/quiet"); err != nil || got.Key != n.Key || got.Quarantined {
		t.Fatalf("LookupNAR(alias) = %+v, %v", got, err)
	}
	checkGone(t, c, p.HashPart)
	if q := quarantinedHashes(t, c); !slices.Equal(q, []string{p.HashPart}) {
		t.Fatalf("Quarantined lists %v after the upload, want %s", q, p.HashPart)
	}
	must(t, "Publish", c.Publish(ctx, p, catalog.PublishOptions{}))
	changes, err := c.Changes(ctx, seq, 10)
	if err != nil || len(changes) != 1 || changes[0].HashPart != p.HashPart {
		t.Fatalf("Changes after the path was published again = %v, %v; want %s", changes, err, p.HashPart)
	}
	checkPublished(t, c, p.HashPart)
}

// TestRepublishHidden checks which publications of a hidden path show it
// again: not one with a hidden reference (allowed with an incomplete
// closure); one over a quarantined NAR is refused; its reference to
// itself does not count.
func TestRepublishHidden(t *testing.T) {
	c := openT(t)
	ctx := context.Background()
	na, nb := newNAR("hid-a", t0), newNAR("hid-b", t0)
	pa, pb := newPath("hid-a", na), newPath("hid-b", nb, "hid-a", "hid-b")
	publish(t, c, na, pa)
	publish(t, c, nb, pb)
	if hidden, err := c.Quarantine(ctx, na.Key, "lost", t0); err != nil || len(hidden) != 2 {
		t.Fatalf("Quarantine = %v, %v; want both hidden", hidden, err)
	}
	incomplete := catalog.PublishOptions{AllowIncompleteClosure: true}
	must(t, "Publish with a hidden reference", c.Publish(ctx, pb, incomplete))
	checkGone(t, c, pa.HashPart, pb.HashPart)
	if err := c.Publish(ctx, pa, catalog.PublishOptions{}); !errors.Is(err, catalog.ErrNARNotFound) {
		t.Fatalf("Publish over the quarantined NAR: %v, want ErrNARNotFound", err)
	}
	checkGone(t, c, pa.HashPart, pb.HashPart)
	must(t, "PutNAR", c.PutNAR(ctx, na))
	must(t, "Publish", c.Publish(ctx, pa, catalog.PublishOptions{}))
	checkPublished(t, c, pa.HashPart)
	checkGone(t, c, pb.HashPart)
	must(t, "Publish", c.Publish(ctx, pb, incomplete))
	checkPublished(t, c, pa.HashPart, pb.HashPart)
	if q := quarantinedHashes(t, c); len(q) != 0 {
		t.Fatalf("Quarantined lists %v, want nothing", q)
	}
}

// TestScrubQueueScrubbed checks that ScrubQueue reports when each NAR was
// last scrubbed, zero for never.
func TestScrubQueueScrubbed(t *testing.T) {
	c := openT(t)
	ctx := context.Background()
	a, b := newNAR("scrub-a", t0), newNAR("scrub-b", t0)
	must(t, "PutNAR", c.PutNAR(ctx, a))
	must(t, "PutNAR", c.PutNAR(ctx, b))
	must(t, "MarkScrubbed", c.MarkScrubbed(ctx, a.Key, t0.Add(time.Minute)))
	q, err := c.ScrubQueue(ctx, 10)
	must(t, "ScrubQueue", err)
	if len(q) != 2 || q[0].Key != b.Key || !q[0].Scrubbed.IsZero() ||
		q[1].Key != a.Key || !q[1].Scrubbed.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ScrubQueue = %+v, want %s never scrubbed, then %s scrubbed at %v", q, b.Key, a.Key, t0.Add(time.Minute))
	}
}
