package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/realisation"
	"github.com/nix-cached/cached/signing"
)

// signedBy tells whether the stored realisation has a valid signature by
// key over each of its fingerprints.
func signedBy(t *testing.T, r *realisation.Realisation, key signing.PublicKey) bool {
	t.Helper()
	for _, fp := range r.Fingerprints() {
		if ok, err := signing.VerifyAny([]signing.PublicKey{key}, fp, r.Sigs); !ok || err != nil {
			return false
		}
	}
	return true
}

func TestRealisation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	client, err := signing.GenerateKey("client-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := "sha256:" + strings.Repeat("ab", 32) + "!out"
	dep := "sha256:" + strings.Repeat("cd", 32) + "!dev"
	unsigned, _ := realisation.ParseLegacy(id, []byte(`{"id":"`+id+`","outPath":"`+pathA+`","signatures":[],"dependentRealisations":{"`+dep+`":"`+pathB+`"}}`))
	clientSig := client.Sign(unsigned.Fingerprints()[0])
	forged := f.key.Name() + ":" + strings.Split(clientSig, ":")[1]
	doc := `{"id":"` + id + `","outPath":"` + pathA + `","signatures":["` + clientSig + `","` + forged + `","broken:xx"],"dependentRealisations":{"` + dep + `":"` + pathB + `"}}`
	if err := f.ing.Realisation(ctx, id, []byte(doc)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("realisation of an unpublished path: %v", err)
	}
	if _, err := f.publish(f.upload(t, pathA)); err != nil {
		t.Fatal(err)
	}
	if err := f.ing.Realisation(ctx, id, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	stored := mustRealisation(t, f, id)
	// Signed by the server over both fingerprints (Nix 2.8's with the
	// dependent realisations, 2.34's without), the client's signature
	// kept, the malformed one and the one forged under the server's name
	// dropped.
	if !signedBy(t, stored, f.key.Public()) || !signedBy(t, &realisation.Realisation{Format: realisation.Legacy, ID: id, OutPath: pathA, Sigs: stored.Sigs}, client.Public()) {
		t.Errorf("signatures %q", stored.Sigs)
	}
	if len(stored.Sigs) != 3 || strings.Contains(strings.Join(stored.Sigs, " "), forged) {
		t.Errorf("signatures %q: want the client's and two of the server's", stored.Sigs)
	}

	// Uploaded again without the client's signature: it stays.
	if err := f.ing.Realisation(ctx, id, []byte(strings.Replace(doc, clientSig, forged, 1))); err != nil {
		t.Fatal(err)
	}
	if again := mustRealisation(t, f, id); strings.Join(again.Sigs, " ") != strings.Join(stored.Sigs, " ") {
		t.Errorf("signatures after a second upload %q, want %q", again.Sigs, stored.Sigs)
	}
	// Another output path for the same id is a conflict; the first stays.
	if _, err := f.publish(f.upload(t, pathB)); err != nil {
		t.Fatal(err)
	}
	other := `{"id":"` + id + `","outPath":"` + pathB + `","signatures":[]}`
	if err := f.ing.Realisation(ctx, id, []byte(other)); !errors.Is(err, catalog.ErrConflict) {
		t.Errorf("another outPath: %v, want a conflict", err)
	}
	if mustRealisation(t, f, id).OutPath != pathA {
		t.Error("a conflicting upload replaced the realisation")
	}

	for _, bad := range []struct{ id, doc string }{
		{"sha256:" + strings.Repeat("cd", 32) + "!out", doc},
		{"md5:abc!out", doc},
		{id, "{"},
		{id, `{"id":"` + id + `","outPath":"../../etc"}`},
	} {
		if err := f.ing.Realisation(ctx, bad.id, []byte(bad.doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Realisation(%q, %q) = %v", bad.id, bad.doc, err)
		}
	}
}

func TestBuildTrace(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	if _, err := f.publish(f.upload(t, pathA)); err != nil {
		t.Fatal(err)
	}
	drv := pathC + ".drv"
	if err := f.ing.BuildTrace(ctx, drv, "out", []byte(`{"outPath":"`+pathA+`","signatures":[]}`)); err != nil {
		t.Fatal(err)
	}
	body, err := f.cat.Realisation(ctx, drv+"^out")
	if err != nil {
		t.Fatal(err)
	}
	r, err := realisation.ParseBuildTrace(drv, "out", body)
	if err != nil || !signedBy(t, r, f.key.Public()) {
		t.Fatalf("stored %s: %v", body, err)
	}
	if want := `{"outPath":"` + pathA + `","signatures":[{"keyName":"` + f.key.Name() + `","sig":"`; !strings.HasPrefix(string(body), want) {
		t.Errorf("stored %s, want structured signatures as Nix 2.35 writes them", body)
	}
	if err := f.ing.BuildTrace(ctx, drv, "out", []byte(`{"outPath":"`+pathB+`","signatures":[]}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("build trace of an unpublished path: %v", err)
	}
	if err := f.ing.BuildTrace(ctx, pathC, "out", []byte(`{"outPath":"`+pathA+`"}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("build trace of a non-derivation: %v", err)
	}
}

// mustRealisation returns the stored legacy realisation id, parsed.
func mustRealisation(t *testing.T, f *fixture, id string) *realisation.Realisation {
	t.Helper()
	body, err := f.cat.Realisation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := realisation.ParseLegacy(id, body)
	if err != nil {
		t.Fatalf("stored %s: %v", body, err)
	}
	return r
}
