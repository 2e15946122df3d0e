package ingest

import (
	"context"
	"strings"
	"testing"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
)

// sigNames returns the key names of a narinfo's signatures, checking that
// each of keys signed it validly.
func sigNames(t *testing.T, text string, keys ...signing.SecretKey) []string {
	t.Helper()
	ni, err := narinfo.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	fp, err := ni.AppendFingerprint(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range ni.Sigs {
		sig, err := signing.ParseSignature(s)
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		names = append(names, sig.KeyName)
	}
	for _, k := range keys {
		if ok, err := signing.VerifyAny([]signing.PublicKey{k.Public()}, fp, ni.Sigs); err != nil || !ok {
			t.Errorf("%s did not sign:\n%s", k.Name(), text)
		}
	}
	return names
}

// TestResign re-signs a published narinfo as keys roll over: a new key's
// signature is added, a retired name's removed, a client's kept, and a
// narinfo signed as it should be comes back unchanged.
func TestResign(t *testing.T) {
	f := newFixture(t, nil)
	a := f.key
	b, _ := signing.GenerateKey("test-cache-2", nil)
	client, _ := signing.GenerateKey("client-1", nil)
	u := f.upload(t, pathC)
	fp, _ := u.ni.AppendFingerprint(nil)
	u.ni.Sigs = []string{client.Sign(fp)}
	p, err := f.publish(u)
	if err != nil {
		t.Fatal(err)
	}
	with := func(keys []signing.SecretKey, retired ...string) *Ingester {
		in, err := New(f.store, f.cat, Options{Keys: keys, RetiredKeys: retired})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	resign := func(in *Ingester, text string) string {
		t.Helper()
		out, err := in.Resign(text)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	if got := resign(f.ing, p.NarInfo); got != p.NarInfo {
		t.Errorf("re-signing with the same keys changed the narinfo:\n%s\n%s", p.NarInfo, got)
	}
	both := resign(with([]signing.SecretKey{a, b}), p.NarInfo)
	if got := strings.Join(sigNames(t, both, a, b, client), " "); got != "client-1 test-cache-1 test-cache-2" {
		t.Errorf("with keys 1 and 2: signatures by %s", got)
	}
	if strings.Replace(both, "Sig: test-cache-2:", "", 1) == both {
		t.Fatal("no new signature")
	}
	// Key 1 no longer signs but is not retired: its signature stays,
	// like any other (clients may still trust it).
	kept := resign(with([]signing.SecretKey{b}), both)
	if kept != both {
		t.Errorf("dropping key 1 without retiring it changed the narinfo:\n%s\n%s", both, kept)
	}
	retired := resign(with([]signing.SecretKey{b}, a.Name()), both)
	if got := strings.Join(sigNames(t, retired, b, client), " "); got != "client-1 test-cache-2" {
		t.Errorf("with key 1 retired: signatures by %s", got)
	}
	if again := resign(with([]signing.SecretKey{b}, a.Name()), retired); again != retired {
		t.Errorf("re-signing twice changed the narinfo:\n%s\n%s", retired, again)
	}
	if got := resign(with([]signing.SecretKey{b}, a.Name()), p.NarInfo); got != retired {
		t.Errorf("re-signing a narinfo signed by key 1 only:\n%s\nwant\n%s", got, retired)
	}
	if _, err := f.ing.Resign("not a narinfo"); err == nil {
		t.Error("re-signing garbage succeeded")
	}
}

// A push to a server with a retired key keeps no signature under its name:
// neither the client's nor the one the path had.
func TestPushStripsRetired(t *testing.T) {
	old, _ := signing.GenerateKey("test-cache-0", nil)
	f := newFixture(t, func(o *Options) { o.RetiredKeys = []string{old.Name()} })
	u := f.upload(t, pathC)
	fp, _ := u.ni.AppendFingerprint(nil)
	u.ni.Sigs = []string{old.Sign(fp)}
	p, err := f.publish(u)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sigNames(t, p.NarInfo, f.key), " "); got != "test-cache-1" {
		t.Errorf("pushed with a retired key's signature: signatures by %s", got)
	}
	// The path as an older server signed it, then pushed again.
	if err := f.cat.ReplaceNarInfo(context.Background(), p.HashPart, p.NarInfo,
		strings.Replace(p.NarInfo, "Sig: ", "Sig: "+old.Sign(fp)+"\nSig: ", 1)); err != nil {
		t.Fatal(err)
	}
	u.ni.Sigs = nil
	p, err = f.publish(u)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sigNames(t, p.NarInfo, f.key), " "); got != "test-cache-1" {
		t.Errorf("pushed again: signatures by %s", got)
	}
}
