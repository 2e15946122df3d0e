// Package catalogtest is the conformance suite that every catalog.Catalog
// implementation passes: an implementation's test is its constructor and
// one call to Run.
package catalogtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// Run runs the conformance suite. open must return a new, empty catalog
// each time it is called; the suite closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) catalog.Catalog) {
	fresh := func(t *testing.T) catalog.Catalog {
		t.Helper()
		c := open(t)
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return c
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, c catalog.Catalog)
	}{
		{"PutNAR/LookupByKeyAndAlias", testLookupNAR},
		{"PutNAR/RenewAndRepointAliases", testRenewNAR},
		{"LookupNAR/Unknown", testLookupUnknownNAR},
		{"Publish/HappyPath", testPublish},
		{"Publish/UnknownNAR", testPublishUnknownNAR},
		{"Publish/MissingReferences", testPublishMissingReferences},
		{"Publish/SelfReference", testPublishSelfReference},
		{"Publish/AllowIncompleteClosure", testPublishIncomplete},
		{"Publish/RepublishSameHash", testRepublish},
		{"Publish/RepublishOtherNAR", testRepublishOtherNAR},
		{"Publish/Conflict", testPublishConflict},
		{"Publish/Chain", testPublishChain},
		{"Publish/Mirrored", testPublishMirrored},
		{"Lookup/UnknownPath", testUnknownPath},
		{"WalkPaths/EveryPathOnce", testWalkPaths},
		{"WalkPaths/StopsOnError", testWalkPathsError},
		{"UnclaimedNARs", testUnclaimedNARs},
		{"BlobInUse", testBlobInUse},
		{"NARState/BeginNAR", testBeginNAR},
		{"NARState/BeginNARRenews", testBeginNARRenews},
		{"NARState/MarkNARDeleting", testMarkNARDeleting},
		{"NARState/DropNAR", testDropNAR},
		{"NARState/Busy", testNARBusy},
		{"NARState/OrphanPlaceholder", testOrphanPlaceholder},
		{"Publish/LastUsed", testPublishLastUsed},
		{"RecordUse", testRecordUse},
		{"WalkGraph/EveryPathOnce", testWalkGraph},
		{"WalkGraph/StopsOnError", testWalkGraphError},
		{"Referrers", testReferrers},
		{"DeletePath/Refused", testDeletePathRefused},
		{"DeletePath/NAR", testDeletePathNAR},
		{"DeletePath/DuringUpload", testDeletePathDuringUpload},
		{"DeletePath/Realisations", testDeletePathRealisations},
		{"DeletePath/OrphanLog", testDeletePathOrphanLog},
		{"DeletePath/Pins", testDeletePathPins},
		{"DeletePaths", testDeletePaths},
		{"DeletePaths/OneByOne", testDeletePathsOneByOne},
		{"Pins", testPins},
		{"TryLock", testTryLock},
		{"Quarantine", testQuarantine},
		{"ScrubQueue", testScrubQueue},
		{"GCRuns", testGCRuns},
		{"GCRunHistory", testGCRunHistory},
		{"SearchPaths", testSearchPaths},
		{"Stats", testStats},
		{"Realisations", testRealisations},
		{"Tokens", testTokens},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentPublish", testConcurrentPublish},
		{"Changes/Empty", testChangesEmpty},
		{"Changes/Publish", testChangesPublish},
		{"Changes/FailedPublish", testChangesFailedPublish},
		{"Changes/OnlyNarInfo", testChangesOnlyNarInfo},
		{"Changes/Delete", testChangesDelete},
		{"Changes/Paging", testChangesPaging},
		{"Changes/Prune", testChangesPrune},
		{"ReplaceNarInfo", testReplaceNarInfo},
		{"ReplaceNarInfo/Concurrent", testReplaceNarInfoConcurrent},
		{"NarInfosAfter", testNarInfosAfter},
		{"ResignState", testResignState},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
}

// t0 is the suite's reference time; implementations keep at least
// millisecond precision, so every time used here is whole milliseconds.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

const nix32 = "0123456789abcdfghijklmnpqrsvwxyz"

// FakeHash returns a deterministic nix32-alphabet string of n characters.
func FakeHash(seed string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
		for _, x := range sum {
			if b.Len() == n {
				break
			}
			b.WriteByte(nix32[x%32])
		}
	}
	return b.String()
}

// HashPart returns the 32-character hash part named by seed.
func HashPart(seed string) string { return FakeHash("path:"+seed, 32) }

// newNAR returns a zstd NAR record named by seed, created at created.
func newNAR(seed string, created time.Time) catalog.NAR {
	fh := FakeHash("file:"+seed, 52)
	return catalog.NAR{
		Key:         "nar/" + fh + ".nar.zst",
		Compression: "zstd",
		FileHash:    "sha256:" + fh,
		FileSize:    int64(len(seed)) + 100,
		NarHash:     "sha256:" + FakeHash("nar:"+seed, 52),
		NarSize:     int64(len(seed)) + 200,
		ListingKey:  HashPart(seed) + ".ls",
		CreatedAt:   created,
	}
}

// newPath returns the path named by seed stored in n, referencing the
// paths named by refs, with a rendered narinfo signed by "sig".
func newPath(seed string, n catalog.NAR, sig string, refs ...string) catalog.Path {
	p := catalog.Path{
		HashPart:  HashPart(seed),
		StorePath: "/nix/store/" + HashPart(seed) + "-" + seed,
		NARKey:    n.Key,
		NarHash:   n.NarHash,
		NarSize:   n.NarSize,
		Deriver:   FakeHash("drv:"+seed, 32) + "-" + seed + ".drv",
		CreatedAt: n.CreatedAt,
		LastUsed:  n.CreatedAt,
	}
	var names []string
	for _, r := range refs {
		p.References = append(p.References, HashPart(r))
		names = append(names, HashPart(r)+"-"+r)
	}
	slices.Sort(names)
	p.NarInfo = fmt.Sprintf("StorePath: %s\nURL: %s\nCompression: %s\nFileHash: %s\nFileSize: %d\n"+
		"NarHash: %s\nNarSize: %d\nReferences: %s\nDeriver: %s\nSig: %s\n",
		p.StorePath, n.Key, n.Compression, n.FileHash, n.FileSize, p.NarHash, p.NarSize,
		strings.Join(names, " "), p.Deriver, sig)
	return p
}

// putNAR records n or fails the test.
func putNAR(t *testing.T, c catalog.Catalog, n catalog.NAR, aliases ...string) {
	t.Helper()
	if err := c.PutNAR(context.Background(), n, aliases...); err != nil {
		t.Fatalf("PutNAR(%s): %v", n.Key, err)
	}
}

// publish records p's NAR (created at p.CreatedAt) and p, or fails the test.
func publish(t *testing.T, c catalog.Catalog, n catalog.NAR, p catalog.Path) {
	t.Helper()
	putNAR(t, c, n)
	if err := c.Publish(context.Background(), p, catalog.PublishOptions{}); err != nil {
		t.Fatalf("Publish(%s): %v", p.StorePath, err)
	}
}

// sortedRefs returns refs sorted, with nil and empty alike.
func sortedRefs(refs []string) []string {
	out := slices.Clone(refs)
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// diffNAR describes how got differs from want, or returns "".
func diffNAR(got, want catalog.NAR) string {
	g, w := got, want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	var d []string
	if g != w {
		d = append(d, fmt.Sprintf("fields %+v, want %+v", g, w))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	return strings.Join(d, "; ")
}

// diffPath describes how got differs from want, or returns "";
// References are compared as sets.
func diffPath(got, want catalog.Path) string {
	var d []string
	if gr, wr := sortedRefs(got.References), sortedRefs(want.References); !slices.Equal(gr, wr) {
		d = append(d, fmt.Sprintf("References %q, want %q", gr, wr))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !got.LastUsed.Equal(want.LastUsed) {
		d = append(d, fmt.Sprintf("LastUsed %v, want %v", got.LastUsed, want.LastUsed))
	}
	got.References, want.References = nil, nil
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	got.LastUsed, want.LastUsed = time.Time{}, time.Time{}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		d = append(d, fmt.Sprintf("fields %+v, want %+v", got, want))
	}
	return strings.Join(d, "; ")
}

// checkPath fails the test unless the published record of want.HashPart
// and its narinfo equal want.
func checkPath(t *testing.T, c catalog.Catalog, want catalog.Path) {
	t.Helper()
	ctx := context.Background()
	got, err := c.Path(ctx, want.HashPart)
	if err != nil {
		t.Fatalf("Path(%s): %v", want.HashPart, err)
	}
	if d := diffPath(got, want); d != "" {
		t.Errorf("Path(%s): %s", want.HashPart, d)
	}
	ni, err := c.NarInfo(ctx, want.HashPart)
	if err != nil {
		t.Fatalf("NarInfo(%s): %v", want.HashPart, err)
	}
	if ni != want.NarInfo {
		t.Errorf("NarInfo(%s) = %q, want %q", want.HashPart, ni, want.NarInfo)
	}
}
