package signing

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{nixSig, "test-1:AAAA", "nocolon", ":", "a:b:c", nixSig + "\n"} {
		f.Add(s)
	}
	pk, err := ParsePublicKey(nixPublic)
	if err != nil {
		f.Fatal(err)
	}
	fp := []byte(nixFingerprint)
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignature(s)
		ok, verr := VerifyAny([]PublicKey{pk}, fp, []string{s})
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("ParseSignature(%q) = %v, not ErrInvalidSignature", s, err)
			}
			if ok || pk.Verify(fp, s) {
				t.Fatalf("malformed %q verifies", s)
			}
			return
		}
		if len(sig.Bytes) != 64 {
			t.Fatalf("ParseSignature(%q) gave %d bytes", s, len(sig.Bytes))
		}
		again, err := ParseSignature(sig.String())
		if err != nil || again.KeyName != sig.KeyName || !bytes.Equal(again.Bytes, sig.Bytes) {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
		if verr != nil {
			t.Fatalf("VerifyAny errs on well-formed %q: %v", s, verr)
		}
		golden, _ := ParseSignature(nixSig)
		want := sig.KeyName == golden.KeyName && bytes.Equal(sig.Bytes, golden.Bytes)
		if ok != pk.Verify(fp, s) || ok != want {
			t.Fatalf("%q: VerifyAny %v, Verify %v", s, ok, pk.Verify(fp, s))
		}
	})
}

func FuzzParseSecretKey(f *testing.F) {
	for _, s := range []string{nixSecret, nixSecret + "\n", nixPublic, "a:", ":AAAA", "x:" + nixSecret[7:30]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSecretKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ParseSecretKey = %v, not ErrInvalidKey", err)
			}
			return
		}
		again, err := ParseSecretKey(k.String())
		if err != nil || again.String() != k.String() {
			t.Fatalf("round trip: %v", err)
		}
		fp := []byte(nixFingerprint)
		if !k.Public().Verify(fp, k.Sign(fp)) {
			t.Fatal("own signature does not verify")
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	for _, s := range []string{nixPublic, nixPublic + "\n", nixSecret, "a:", ":AAAA", " x:AAAA "} {
		f.Add(s)
	}
	golden, err := ParsePublicKey(nixPublic)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ParsePublicKey = %v, not ErrInvalidKey", err)
			}
			return
		}
		again, err := ParsePublicKey(k.String())
		if err != nil || !again.Equal(k) {
			t.Fatalf("round trip: %v", err)
		}
		// The golden signature, renamed to k, verifies exactly when k holds
		// the golden key bytes.
		if k.Verify([]byte(nixFingerprint), k.Name()+nixSig[len("test-1"):]) != k.key.Equal(golden.key) {
			t.Fatal("Verify disagrees with the golden key")
		}
	})
}

func BenchmarkSign(b *testing.B) {
	sk, err := ParseSecretKey(nixSecret)
	if err != nil {
		b.Fatal(err)
	}
	fp := []byte(nixFingerprint)
	b.ReportAllocs()
	for b.Loop() {
		sk.Sign(fp)
	}
}

func BenchmarkVerify(b *testing.B) {
	pk, err := ParsePublicKey(nixPublic)
	if err != nil {
		b.Fatal(err)
	}
	fp := []byte(nixFingerprint)
	b.ReportAllocs()
	for b.Loop() {
		if !pk.Verify(fp, nixSig) {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkVerifyAny(b *testing.B) {
	pk, err := ParsePublicKey(nixPublic)
	if err != nil {
		b.Fatal(err)
	}
	keys := []PublicKey{mustGenerate(b, "other", 1).Public(), pk}
	sigs := []string{"unknown:AAAA", nixSig}
	fp := []byte(nixFingerprint)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := VerifyAny(keys, fp, sigs); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
