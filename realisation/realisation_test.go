package realisation

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nix-cached/cached/signing"
)

// The vectors below are Nix's own test data for realisations
// (src/libstore-tests/data/realisation in NixOS/nix): documents as Nix
// 2.34.8 and 2.35 write them, the fingerprints 2.35 signs, and signatures
// made with the key Nix's tests use.
const (
	nixTestKey = "test-key:tU7tTvLcScf8pmz/eTV0BEtLmRsPpZfKaRcd0nCN+pysBZPHSeg61/u2oc7mIOewfuAY1V1BiX32homTaDJ2Jw=="
	drv        = "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv"
	legacyID   = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad!foo"

	// 2.35: unkeyed-simple.json and unkeyed-with-signature.json, the
	// values of build-trace-v2/<drv>/foo.doi.
	traceSimple = `{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo","signatures":[]}`
	traceSigned = `{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv","signatures":[{"keyName":"asdf","sig":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}]}`
	// The same signature in the string form 2.35 still reads
	// (with-signature-unstructured.json).
	traceUnstructured = `{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv","signatures":["asdf:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="]}`
	// simple-fingerprint.txt, with-signature-fingerprint.txt.
	traceSimpleFP = `{"key":{"drvPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv","outputName":"foo"},"value":{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo"}}`
	traceSignedFP = `{"key":{"drvPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv","outputName":"foo"},"value":{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"}}`
	// simple-sig.json, with-signature-sig.json: test-key's signatures of
	// those fingerprints.
	traceSimpleSig = "test-key:WsjxK4/EI74COtzMDI+VCjQU9O4FydK0+YeY1CE5hUevogd+T+CPvNXza7oog3GTMS+ZlBwsC2S3ppwusKnJDg=="
	traceSignedSig = "test-key:ZE30UrOh26/EYvUaczjJtz6c4WcRYke6IEhDNN5TiFRF6Uu+H8lHofponlhfZxDDrCUlfstS/vtv3Xm2F6M/AA=="

	// 2.34.8: with-signature.json and with-dependent-realisations.json,
	// pretty-printed there.
	legacySigned = `{
  "dependentRealisations": {},
  "id": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad!foo",
  "outPath": "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv",
  "signatures": [
    "asdf:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
  ]
}`
	legacyDeps = `{
  "dependentRealisations": {
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad!foo": "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"
  },
  "id": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad!foo",
  "outPath": "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv",
  "signatures": []
}`
)

func TestBuildTraceFingerprintAndSignature(t *testing.T) {
	key, err := signing.ParseSecretKey(nixTestKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ doc, fp, sig string }{
		{traceSimple, traceSimpleFP, traceSimpleSig},
		{traceSigned, traceSignedFP, traceSignedSig},
		{traceUnstructured, traceSignedFP, traceSignedSig},
	} {
		r, err := ParseBuildTrace(drv, "foo", []byte(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		fps := r.Fingerprints()
		if len(fps) != 1 || string(fps[0]) != c.fp {
			t.Fatalf("fingerprints of %s: %q, want %q", c.doc, fps, c.fp)
		}
		if got := key.Sign(fps[0]); got != c.sig {
			t.Errorf("signature %s, Nix's is %s", got, c.sig)
		}
	}
}

func TestBuildTraceRoundTrip(t *testing.T) {
	for _, doc := range []string{traceSimple, traceSigned} {
		r, err := ParseBuildTrace(drv, "foo", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != drv+"^foo" || r.OutPath == "" {
			t.Errorf("parsed %+v", r)
		}
		if got := string(r.Marshal()); got != doc {
			t.Errorf("marshalled %s, want %s", got, doc)
		}
	}
	// The string form of a signature is written back structured.
	r, _ := ParseBuildTrace(drv, "foo", []byte(traceUnstructured))
	if got := string(r.Marshal()); got != traceSigned {
		t.Errorf("marshalled %s, want %s", got, traceSigned)
	}
}

func TestLegacyRoundTripAndFingerprints(t *testing.T) {
	for _, c := range []struct {
		doc string
		fps []string
	}{
		{legacySigned, []string{`{"dependentRealisations":{},"id":"` + legacyID + `","outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"}`}},
		{legacyDeps, []string{
			`{"dependentRealisations":{},"id":"` + legacyID + `","outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"}`,
			`{"dependentRealisations":{"` + legacyID + `":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"},"id":"` + legacyID + `","outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"}`,
		}},
	} {
		r, err := ParseLegacy(legacyID, []byte(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		var fps []string
		for _, fp := range r.Fingerprints() {
			fps = append(fps, string(fp))
		}
		if !reflect.DeepEqual(fps, c.fps) {
			t.Errorf("fingerprints %q, want %q", fps, c.fps)
		}
		// Marshal writes Nix's document compactly: the same JSON value.
		var want, got any
		json.Unmarshal([]byte(c.doc), &want)
		if err := json.Unmarshal(r.Marshal(), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("marshalled %s, want %s", r.Marshal(), c.doc)
		}
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []struct {
		what string
		err  error
	}{
		{"id mismatch", func() error {
			_, err := ParseLegacy(strings.Replace(legacyID, "ba", "bb", 1), []byte(legacySigned))
			return err
		}()},
		{"bad legacy id", func() error { _, err := ParseLegacy("sha256:xyz!foo", []byte(legacySigned)); return err }()},
		{"not JSON", func() error { _, err := ParseBuildTrace(drv, "foo", []byte("nope")); return err }()},
		{"not a drv", func() error {
			_, err := ParseBuildTrace("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar", "foo", []byte(traceSimple))
			return err
		}()},
		{"bad output", func() error { _, err := ParseBuildTrace(drv, "a/b", []byte(traceSimple)); return err }()},
		{"bad outPath", func() error {
			_, err := ParseBuildTrace(drv, "foo", []byte(`{"outPath":"../etc","signatures":[]}`))
			return err
		}()},
		{"bad signature", func() error {
			_, err := ParseBuildTrace(drv, "foo", []byte(`{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo","signatures":[3]}`))
			return err
		}()},
		{"bad dependent", func() error {
			_, err := ParseLegacy(legacyID, []byte(strings.Replace(legacyDeps, `-foo.drv"
  },`, `/../x"
  },`, 1)))
			return err
		}()},
	} {
		if !errors.Is(c.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.what, c.err)
		}
	}
}
