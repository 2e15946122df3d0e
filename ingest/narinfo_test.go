package ingest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
)

// uploaded is a NAR uploaded through the fixture, with the narinfo a client
// would send for it.
type uploaded struct {
	nar catalog.NAR
	ni  narinfo.NarInfo
}

// upload ingests an xz NAR for store path base (hash-name) with refs.
func (f *fixture) upload(t *testing.T, base string, refs ...string) uploaded {
	t.Helper()
	plain := sampleNAR(t, base)
	file := compress(t, CompXZ, plain)
	name := nameFor(CompXZ, file)
	n, err := f.ing.NAR(context.Background(), name, bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	narHash, _ := nixhash.Parse(n.NarHash)
	fileHash, _ := nixhash.Parse(sha(file))
	return uploaded{nar: n, ni: narinfo.NarInfo{
		StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: "xz",
		FileHash: fileHash, FileSize: uint64(len(file)),
		NarHash: narHash, NarSize: uint64(n.NarSize), References: refs,
		Deriver: base[:33] + "x.drv",
	}}
}

func (f *fixture) publish(u uploaded) (catalog.Path, error) {
	return f.ing.NarInfo(context.Background(), u.ni.StorePath[11:43], []byte(u.ni.String()))
}

const (
	pathA = "7rjj86a15146cq1d3qy068lml7n8ykzm-a"
	pathB = "5sbpggnbip0823i5hiz50vgjqgq7kd7c-b"
	pathC = "0rm3pvqy4sikbwkvg5py1msvar18859y-c"
)

func TestNarInfoPublish(t *testing.T) {
	f := newFixture(t, nil)
	c := f.upload(t, pathC)
	b := f.upload(t, pathB, pathC, pathB)
	client, _ := signing.GenerateKey("client-1", nil)
	forged, _ := signing.GenerateKey("test-cache-1", nil) // the server's key name
	fp, _ := b.ni.AppendFingerprint(nil)
	b.ni.Sigs = []string{client.Sign(fp), forged.Sign(fp), "other-1:c2hvcnQ="}

	if _, err := f.publish(b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), pathC[:32]) {
		t.Fatalf("publishing before its reference: %v", err)
	}
	if _, err := f.publish(c); err != nil {
		t.Fatal(err)
	}
	p, err := f.publish(b)
	if err != nil {
		t.Fatal(err)
	}
	text, err := f.cat.NarInfo(context.Background(), pathB[:32])
	if err != nil || text != p.NarInfo {
		t.Fatalf("NarInfo: %v", err)
	}
	got, err := narinfo.Parse([]byte(text))
	if err != nil {
		t.Fatalf("served narinfo does not parse: %v\n%s", err, text)
	}
	if got.URL != b.nar.Key || got.Compression != CompZstd || got.FileHash.String() != b.nar.FileHash ||
		got.FileSize != uint64(b.nar.FileSize) {
		t.Errorf("served narinfo does not name the stored file:\n%s", text)
	}
	if strings.Join(got.References, " ") != pathC+" "+pathB {
		t.Errorf("References %v", got.References)
	}
	if got.Deriver != b.ni.Deriver {
		t.Errorf("Deriver %q, want %q", got.Deriver, b.ni.Deriver)
	}
	gfp, _ := got.AppendFingerprint(nil)
	if !bytes.Equal(gfp, fp) {
		t.Fatalf("fingerprint changed:\n%s\n%s", gfp, fp)
	}
	ok, err := signing.VerifyAny([]signing.PublicKey{f.key.Public()}, fp, got.Sigs)
	if err != nil || !ok {
		t.Errorf("the server's signature does not verify: %v\n%s", err, text)
	}
	if !client.Public().Verify(fp, strings.Join(filter(got.Sigs, "client-1:"), "")) {
		t.Errorf("the client's signature was not kept:\n%s", text)
	}
	if len(filter(got.Sigs, "test-cache-1:")) != 1 || len(filter(got.Sigs, "other-1:")) != 0 {
		t.Errorf("forged or malformed signatures were kept:\n%s", text)
	}

	// Publishing again with another signature keeps both.
	second, _ := signing.GenerateKey("client-2", nil)
	b.ni.Sigs = []string{second.Sign(fp)}
	if _, err := f.publish(b); err != nil {
		t.Fatal(err)
	}
	text, _ = f.cat.NarInfo(context.Background(), pathB[:32])
	if !strings.Contains(text, "Sig: client-1:") || !strings.Contains(text, "Sig: client-2:") {
		t.Errorf("re-publishing lost signatures:\n%s", text)
	}

	// Other contents under the same store path are refused.
	other := f.upload(t, pathA)
	other.ni.StorePath = b.ni.StorePath
	other.ni.References = nil
	if _, err := f.publish(other); !errors.Is(err, catalog.ErrConflict) {
		t.Errorf("publishing other contents for a published path: %v", err)
	}
}

func filter(ss []string, prefix string) []string {
	var out []string
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func TestNarInfoRefused(t *testing.T) {
	f := newFixture(t, nil)
	good := f.upload(t, pathA)
	cases := []struct {
		name   string
		hash   string
		mutate func(ni *narinfo.NarInfo)
		body   string
	}{
		{name: "not a narinfo", body: "hello"},
		{name: "NAR never uploaded", mutate: func(ni *narinfo.NarInfo) { ni.URL = "nar/" + strings.Repeat("1", 52) + ".nar.xz" }},
		{name: "NarHash differs", mutate: func(ni *narinfo.NarInfo) { ni.NarHash, _ = nixhash.Parse(sha([]byte("x"))) }},
		{name: "NarSize differs", mutate: func(ni *narinfo.NarInfo) { ni.NarSize++ }},
		{name: "other store dir", mutate: func(ni *narinfo.NarInfo) { ni.StorePath = "/gnu/store/" + pathA }},
		{name: "uploaded under another hash", hash: pathB[:32]},
		{name: "missing reference", mutate: func(ni *narinfo.NarInfo) { ni.References = []string{pathC} }},
		{name: "absolute URL", mutate: func(ni *narinfo.NarInfo) { ni.URL = "http://evil.example/" + ni.URL }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ni := good.ni
			if c.mutate != nil {
				c.mutate(&ni)
			}
			body := ni.String()
			if c.body != "" {
				body = c.body
			}
			hash := pathA[:32]
			if c.hash != "" {
				hash = c.hash
			}
			_, err := f.ing.NarInfo(context.Background(), hash, []byte(body))
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line of ErrInvalid", err)
			}
			if _, err := f.cat.NarInfo(context.Background(), hash); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("refused narinfo is visible: %v", err)
			}
		})
	}
}

func TestNarInfoIncompleteClosureAllowed(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.AllowIncompleteClosure = true })
	a := f.upload(t, pathA, pathC)
	if _, err := f.publish(a); err != nil {
		t.Fatal(err)
	}
}

// TestRepublishKeepsServedNAR pushes the same contents again under another
// NAR file (keep mode, other compression): the narinfo keeps naming the NAR
// that clients may have cached.
func TestRepublishKeepsServedNAR(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Mode = ModeKeep })
	first := f.upload(t, pathA)
	if _, err := f.publish(first); err != nil {
		t.Fatal(err)
	}
	plain := sampleNAR(t, pathA)
	file := compress(t, CompBzip2, plain)
	name := nameFor(CompBzip2, file)
	if _, err := f.ing.NAR(context.Background(), name, bytes.NewReader(file), -1); err != nil {
		t.Fatal(err)
	}
	again := first.ni
	again.URL, again.Compression = "nar/"+name, "bzip2"
	p, err := f.ing.NarInfo(context.Background(), pathA[:32], []byte(again.String()))
	if err != nil {
		t.Fatal(err)
	}
	if p.NARKey != first.nar.Key || !strings.Contains(p.NarInfo, "URL: "+first.nar.Key+"\n") {
		t.Fatalf("re-publishing moved the path to another NAR:\n%s", p.NarInfo)
	}
}
