package infocache

import (
	"context"
	"errors"
	"testing"

	"github.com/nix-cached/cached/catalog"
)

// A narinfo re-signed through the cache is served new at once; one
// re-signed by another process, once the change log is read.
func TestReplaceNarInfo(t *testing.T) {
	ctx := context.Background()
	c, other := twoProcesses(t, Options{})
	hash := publish(t, other, "resign", "old")
	c.poll(ctx)
	old := narInfo(t, c, hash)

	own := old + "Sig: own\n"
	if err := c.ReplaceNarInfo(ctx, hash, old, own); err != nil {
		t.Fatal(err)
	}
	if got := narInfo(t, c, hash); got != own {
		t.Fatalf("after ReplaceNarInfo through the cache: %q, want %q", got, own)
	}
	if err := c.ReplaceNarInfo(ctx, hash, old, "lost"); !errors.Is(err, catalog.ErrNarInfoChanged) {
		t.Fatalf("ReplaceNarInfo of a stale narinfo: %v, want ErrNarInfoChanged", err)
	}
	if got := narInfo(t, c, hash); got != own {
		t.Fatalf("after a refused ReplaceNarInfo: %q, want %q", got, own)
	}

	theirs := own + "Sig: theirs\n"
	if err := other.ReplaceNarInfo(ctx, hash, own, theirs); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	if got := narInfo(t, c, hash); got != theirs {
		t.Fatalf("after another process's ReplaceNarInfo and a poll: %q, want %q", got, theirs)
	}
}
