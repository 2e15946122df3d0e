package signing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseSignature(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"nix", nixSig, true},
		{"no colon", strings.Replace(nixSig, ":", "", 1), false},
		{"empty name", nixSig[len("test-1"):], false},
		{"space in name", "test 1" + nixSig[len("test-1"):], false},
		{"empty signature", "test-1:", false},
		{"short", "test-1:AAAA", false},
		{"long", nixSig[:len(nixSig)-2] + "AAAA", false},
		{"not base64", "test-1:" + strings.Repeat("!", 88), false},
		{"unpadded", strings.TrimRight(nixSig, "="), false},
		{"trailing space", nixSig + " ", false},
		{"second colon", "test-1:x:" + nixSig[len("test-1:"):], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSignature(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("ParseSignature(%q) = %v, want ErrInvalidSignature", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSignature(%q): %v", tt.in, err)
			}
			if s.KeyName != "test-1" || len(s.Bytes) != 64 {
				t.Errorf("got name %q, %d bytes", s.KeyName, len(s.Bytes))
			}
			if s.String() != tt.in {
				t.Errorf("String() = %q, want %q", s.String(), tt.in)
			}
		})
	}
}

func TestVerifyAny(t *testing.T) {
	k1 := mustGenerate(t, "one", 1)
	k2 := mustGenerate(t, "two", 2)
	k3 := mustGenerate(t, "three", 3)
	k1again := mustGenerate(t, "one", 4) // a second key under the same name
	fp := []byte(nixFingerprint)
	good1, good2 := k1.Sign(fp), k2.Sign(fp)
	wrong1 := k1.Sign([]byte("another fingerprint"))
	by3 := k3.Sign(fp)
	as1 := "one" + by3[len("three"):] // k3's signature under k1's name
	keys := []PublicKey{k1.Public(), k2.Public()}
	tests := []struct {
		name    string
		keys    []PublicKey
		sigs    []string
		want    bool
		wantErr bool
	}{
		{"one good", keys, []string{good1}, true, false},
		{"second good", keys, []string{good2}, true, false},
		{"no sigs", keys, nil, false, false},
		{"no keys", nil, []string{good1}, false, false},
		{"wrong signature", keys, []string{wrong1}, false, false},
		{"wrong then good", keys, []string{wrong1, good2}, true, false},
		{"unknown key only", keys, []string{by3}, false, false},
		{"unknown key and good", keys, []string{by3, good1}, true, false},
		{"key used under another name", keys, []string{as1}, false, false},
		{"unknown key, malformed", keys, []string{"three:AAAA", "nocolon", ":AAAA", good1}, true, false},
		{"known key, short", keys, []string{"one:AAAA"}, false, true},
		{"known key, short, and good", keys, []string{good2, "one:AAAA"}, false, true},
		{"known key, not base64", keys, []string{good1, "two:!!!!"}, false, true},
		{"known key, empty", keys, []string{"two:"}, false, true},
		{"two keys of one name", []PublicKey{k1again.Public(), k1.Public()}, []string{good1}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyAny(tt.keys, fp, tt.sigs)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidSignature) || got {
					t.Fatalf("VerifyAny = %v, %v; want false, ErrInvalidSignature", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("VerifyAny = %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

// mustGenerate returns a key made from a seed of repeated b.
func mustGenerate(t testing.TB, name string, b byte) SecretKey {
	t.Helper()
	k, err := GenerateKey(name, bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
