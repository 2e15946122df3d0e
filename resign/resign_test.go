package resign

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/signing"
)

// TestRollover rolls a cache's key over as an operator does: paths pushed
// under key a; a added b (b's signature added everywhere); a retired (its
// signatures removed). Client signatures stay throughout, a start with an
// unchanged key set checks no path, and every rewrite is in the change
// log.
func TestRollover(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "p", 2*pageSize+3)
	e.checkSigners("pushed", hashes, "cache-a-1 client-1")

	// The first start with key a: one pass, nothing to rewrite.
	r := e.resigner(onlyA, []signing.SecretKey{e.a})
	e.step(r)
	st := e.state()
	if st.Completed.IsZero() || st.Checked != int64(len(hashes)) || st.Rewritten != 0 || st.Total != int64(len(hashes)) {
		t.Fatalf("first pass: %+v", st)
	}
	if s := r.Stats(); !s.Done || s.Pending != 0 || s.Rewritten != 0 {
		t.Errorf("first pass: stats %+v", s)
	}
	// A restart with the same key: no walk.
	again := e.resigner(onlyA, []signing.SecretKey{e.a})
	e.step(again)
	if s := again.Stats(); s.Checked != 0 || !s.Done {
		t.Errorf("a start with the same keys checked %d paths (%+v)", s.Checked, s)
	}
	if got := e.state(); !got.Started.Equal(st.Started) {
		t.Errorf("a start with the same keys began a new pass: %+v", got)
	}

	// Keys a and b: b's signature is added.
	both := []signing.SecretKey{e.a, e.b}
	seq := e.lastChange()
	r = e.resigner(e.ingester(both), both)
	e.step(r)
	e.checkSigners("a and b", hashes, "cache-a-1 cache-b-1 client-1")
	st = e.state()
	if st.Completed.IsZero() || st.Checked != int64(len(hashes)) || st.Rewritten != int64(len(hashes)) ||
		strings.Join(st.KeyNames, " ") != "cache-a-1 cache-b-1" || len(st.Retired) != 0 || st.Target != r.Target() {
		t.Fatalf("pass to a and b: %+v", st)
	}
	if n := e.changesSince(seq); n != len(hashes) {
		t.Errorf("the pass recorded %d changes, want one per path (%d)", n, len(hashes))
	}
	if s := r.Stats(); s.Rewritten != int64(len(hashes)) || !s.Done {
		t.Errorf("pass to a and b: stats %+v", s)
	}

	// b alone, a not retired: a's signatures stay.
	onlyB := []signing.SecretKey{e.b}
	e.step(e.resigner(e.ingester(onlyB), onlyB))
	e.checkSigners("b, a dropped", hashes, "cache-a-1 cache-b-1 client-1")

	// b alone, a retired: a's signatures go.
	retire := e.resigner(e.ingester(onlyB, e.a.Name()), onlyB, e.a.Name())
	e.step(retire)
	e.checkSigners("a retired", hashes, "cache-b-1 client-1")
	if st := e.state(); strings.Join(st.Retired, " ") != "cache-a-1" || st.Rewritten != int64(len(hashes)) {
		t.Errorf("pass retiring a: %+v", st)
	}
	// A follower of the change log does not check the pass's own rewrites
	// again.
	follower := e.resigner(e.ingester(onlyB, e.a.Name()), onlyB, e.a.Name())
	e.step(follower)
	if s := follower.Stats(); s.Checked != 0 || !s.Done {
		t.Errorf("following after the pass: %+v", s)
	}
}

// TestResumes stops a pass midway (the process is stopped); a later start
// with the same keys goes on from where it stopped.
func TestResumes(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "r", 3*pageSize)
	e.step(e.resigner(onlyA, []signing.SecretKey{e.a}))

	both := []signing.SecretKey{e.a, e.b}
	in := e.ingester(both)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	stopping := signerFunc(func(text string) (string, error) {
		if calls.Add(1) == pageSize+pageSize/2 {
			cancel() // stopped in the middle of the second page
		}
		return in.Resign(text)
	})
	if _, err := e.resigner(stopping, both).Step(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped pass: %v", err)
	}
	st := e.state()
	if !st.Completed.IsZero() || st.Checked != pageSize || st.Cursor != hashes[pageSize-1] {
		t.Fatalf("state of the stopped pass: %+v (cursor want %s)", st, hashes[pageSize-1])
	}

	// While no process re-signs, a replica still on key a pushes a path
	// that the stopped walk had passed already.
	var early string
	for i := 0; early == ""; i++ {
		if h := catalogtest.HashPart(fmt.Sprintf("early-%d", i)); h < st.Cursor {
			early = e.push(onlyA, fmt.Sprintf("early-%d", i))
		}
	}

	var first string
	resumed := signerFunc(func(text string) (string, error) {
		if first == "" {
			first = text
		}
		return in.Resign(text)
	})
	r := e.resigner(resumed, both)
	e.step(r)
	if !strings.Contains(first, hashes[pageSize]) {
		t.Errorf("the resumed pass began with\n%s\nnot with %s, the path after the cursor", first, hashes[pageSize])
	}
	st = e.state()
	// What the stopped pass rewrote after its last save is not counted.
	if st.Completed.IsZero() || st.Checked != int64(len(hashes)) ||
		st.Rewritten < int64(len(hashes)-pageSize) || st.Rewritten > int64(len(hashes)) {
		t.Errorf("state of the resumed pass: %+v", st)
	}
	e.checkSigners("resumed", hashes, "cache-a-1 cache-b-1 client-1")
	e.checkSigners("pushed while stopped", []string{early}, "cache-a-1 cache-b-1 client-1")
}

// TestRate: a pass checks no more paths per second than the rate, by the
// fake clock its sleeps advance.
func TestRate(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "rate", 300)
	r := e.resigner(onlyA, []signing.SecretKey{e.a})
	r.pace.rate = 100
	start := e.clock.Now()
	e.step(r)
	took := e.clock.Now().Sub(start)
	if min := time.Duration(len(hashes)-1) * 10 * time.Millisecond; took < min || e.slept < min {
		t.Errorf("%d paths at 100/s took %v by the clock (slept %v), want at least %v", len(hashes), took, e.slept, min)
	}
	if max := time.Duration(len(hashes)+1) * 10 * time.Millisecond; e.slept > max {
		t.Errorf("%d paths at 100/s slept %v, more than %v", len(hashes), e.slept, max)
	}
}

// TestConcurrentPush: a push of a path between the re-signer's read and
// its rewrite is not overwritten: the pushed narinfo is re-signed, with
// the signature the push added.
func TestConcurrentPush(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "race", 5)
	e.step(e.resigner(onlyA, []signing.SecretKey{e.a}))

	both := []signing.SecretKey{e.a, e.b}
	in := e.ingester(both)
	client2, _ := signing.GenerateKey("client-2", nil)
	raced := false
	pushing := signerFunc(func(text string) (string, error) {
		if !raced && strings.Contains(text, hashes[2]) {
			raced = true
			// A replica still on key a publishes the path again.
			e.push(onlyA, "race-"+seedOf(t, text), client2)
		}
		return in.Resign(text)
	})
	e.step(e.resigner(pushing, both))
	if !raced {
		t.Fatal("no push raced")
	}
	if got := e.signers(hashes[2], e.a, e.b); got != "cache-a-1 cache-b-1 client-1 client-2" {
		t.Errorf("the raced path is signed by %q: the push was lost or not re-signed", got)
	}
	e.checkSigners("others", append(hashes[:2:2], hashes[3:]...), "cache-a-1 cache-b-1 client-1")
}

// seedOf returns the i of a "race-<i>" store path in a narinfo.
func seedOf(t *testing.T, text string) string {
	t.Helper()
	_, rest, ok := strings.Cut(text, "-race-")
	if !ok {
		t.Fatalf("no race path in\n%s", text)
	}
	return rest[:strings.IndexByte(rest, '\n')]
}

// TestNewerConfigWins: a process whose key set differs from the pass of a
// process started after it leaves the narinfos alone; one started later
// than that pass takes over.
func TestNewerConfigWins(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "n", 10)
	old := e.resigner(onlyA, []signing.SecretKey{e.a}) // a replica not yet restarted
	both := []signing.SecretKey{e.a, e.b}
	e.step(e.resigner(e.ingester(both), both))
	e.checkSigners("new keys", hashes, "cache-a-1 cache-b-1 client-1")
	st := e.state()

	e.step(old)
	if got := e.state(); got.Target != st.Target || !got.Started.Equal(st.Started) {
		t.Fatalf("an older configuration started a pass: %+v", got)
	}
	if s := old.Stats(); s.Checked != 0 || s.Done {
		t.Errorf("the older configuration: %+v", s)
	}
	e.checkSigners("after the older one's step", hashes, "cache-a-1 cache-b-1 client-1")

	// Started after the pass: its key set is the one wanted now.
	e.step(e.resigner(e.ingester([]signing.SecretKey{e.a}, e.b.Name()), []signing.SecretKey{e.a}, e.b.Name()))
	e.checkSigners("back to a", hashes, "cache-a-1 client-1")
}

// TestFollowsChanges: what a replica still signing with other keys
// publishes after the pass is re-signed by the next step.
func TestFollowsChanges(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	e.pushMany(onlyA, "f", 3)
	both := []signing.SecretKey{e.a, e.b}
	r := e.resigner(e.ingester(both), both)
	e.step(r)
	late := e.push(onlyA, "late")
	e.checkSigners("pushed by the old replica", []string{late}, "cache-a-1 client-1")
	e.step(r)
	e.checkSigners("followed", []string{late}, "cache-a-1 cache-b-1 client-1")
	if s := r.Stats(); s.Rewritten != 4 {
		t.Errorf("stats %+v, want the 3 paths and the late one rewritten", s)
	}
}

// TestLocked: while another process holds the lock, a pass does not run.
func TestLocked(t *testing.T) {
	e := newEnv(t)
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "l", 3)
	if ok, err := e.cat.TryLock(context.Background(), lockName, "other", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	both := []signing.SecretKey{e.a, e.b}
	r := e.resigner(e.ingester(both), both)
	if wait, err := r.Step(context.Background()); err != nil || wait != time.Second {
		t.Fatalf("Step with the lock held elsewhere: %v, %v", wait, err)
	}
	e.checkSigners("locked", hashes, "cache-a-1 client-1")
	if err := e.cat.Unlock(context.Background(), lockName, "other"); err != nil {
		t.Fatal(err)
	}
	e.step(r)
	e.checkSigners("unlocked", hashes, "cache-a-1 cache-b-1 client-1")
}

func TestNewRefuses(t *testing.T) {
	e := newEnv(t)
	in := e.ingester([]signing.SecretKey{e.a})
	for name, opt := range map[string]Options{
		"no key":         {},
		"retired signer": {Keys: []signing.PublicKey{e.a.Public()}, Retired: []string{e.a.Name()}},
		"negative rate":  {Keys: []signing.PublicKey{e.a.Public()}, Rate: -1},
	} {
		if _, err := New(e.cat, in, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFingerprint(t *testing.T) {
	e := newEnv(t)
	a, b := e.a.Public(), e.b.Public()
	same := Fingerprint([]signing.PublicKey{a, b}, []string{"x", "y"})
	if got := Fingerprint([]signing.PublicKey{b, a}, []string{"y", "x", "y"}); got != same {
		t.Error("the fingerprint depends on order")
	}
	other, _ := signing.GenerateKey(e.a.Name(), nil) // same name, another key
	for _, fp := range []string{
		Fingerprint([]signing.PublicKey{a}, []string{"x", "y"}),
		Fingerprint([]signing.PublicKey{a, b}, []string{"x"}),
		Fingerprint([]signing.PublicKey{other.Public(), b}, []string{"x", "y"}),
	} {
		if fp == same {
			t.Error("different key sets have the same fingerprint")
		}
	}
}
