package signing

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// A key pair made by `nix-store --generate-binary-cache-key test-1 sk pk`
// (Nix 2.8.0), and the signature `nix store sign --key-file sk` put on
// /nix/store/qg9cqhw9nw51r2j5308vxamfsbrkb0cl-h3exp-x.
const (
	nixSecret      = "test-1:cBBwY3Ggyrd44PIRgH9vokUhE8uYAr+FcJlR2xlgDIx4G7vgb37zrsp/3c6oRS2TT1MGJX66NKdrZVc2VHo7aA=="
	nixPublic      = "test-1:eBu74G9+867Kf93OqEUtk09TBiV+ujSna2VXNlR6O2g="
	nixFingerprint = "1;/nix/store/qg9cqhw9nw51r2j5308vxamfsbrkb0cl-h3exp-x;sha256:1xmr8jicvzszfzpz46g37mlpvbzjl2wpwvl2b05psipssyp1sm8h;120;"
	nixSig         = "test-1:y8kbRMmUcQTTlLLlzl/3tIh7NDQ8DRAhsKp+d5ExCg2YJoIyvtE8sVcv3BTDt7Y9oHlUr1kHTuEV1KrP3zliDQ=="
)

func TestGoldenNixKey(t *testing.T) {
	sk, err := ParseSecretKey(nixSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := sk.String(); got != nixSecret {
		t.Errorf("String() = %q, want %q", got, nixSecret)
	}
	if got := sk.Name(); got != "test-1" {
		t.Errorf("Name() = %q", got)
	}
	pk := sk.Public()
	if got := pk.String(); got != nixPublic {
		t.Errorf("Public().String() = %q, want %q", got, nixPublic)
	}
	if got := sk.Sign([]byte(nixFingerprint)); got != nixSig {
		t.Errorf("Sign() = %q, want Nix's %q", got, nixSig)
	}
	pk2, err := ParsePublicKey(nixPublic)
	if err != nil {
		t.Fatal(err)
	}
	if !pk2.Equal(pk) {
		t.Errorf("parsed public key %v differs from derived %v", pk2, pk)
	}
	if !pk2.Verify([]byte(nixFingerprint), nixSig) {
		t.Error("Nix's signature does not verify")
	}
}

func TestParseSecretKey(t *testing.T) {
	// Same seed, public half of another key: does not match.
	other, err := GenerateKey("test-1", bytes.NewReader(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	mismatched := nixSecret[:len("test-1:")] + mixHalves(t, nixSecret, other.String())
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"nix file", nixSecret, true},
		{"trailing newline", nixSecret + "\n", true},
		{"surrounding space", " \t" + nixSecret + " \r\n", true},
		{"no colon", strings.Replace(nixSecret, ":", "", 1), false},
		{"empty name", nixSecret[len("test-1"):], false},
		{"space in name", "test 1" + nixSecret[len("test-1"):], false},
		{"empty key", "test-1:", false},
		{"public key instead", nixPublic, false},
		{"not base64", "test-1:!!!!", false},
		{"unpadded", strings.TrimRight(nixSecret, "="), false},
		{"newline inside, as Nix skips", nixSecret[:20] + "\n" + nixSecret[20:], true},
		{"truncated", nixSecret[:len(nixSecret)-8] + "AAAA====", false},
		{"public half mismatch", mismatched, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseSecretKey(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("ParseSecretKey(%q) = %v, want ErrInvalidKey", tt.in, err)
				}
				if _, b64, _ := strings.Cut(strings.TrimSpace(tt.in), ":"); len(b64) > 8 && strings.Contains(err.Error(), b64) {
					t.Errorf("error %q leaks the key material", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecretKey(%q): %v", tt.in, err)
			}
			if k.String() != nixSecret {
				t.Errorf("String() = %q", k.String())
			}
		})
	}
}

// mixHalves returns base64 of the seed of a and the public half of b.
func mixHalves(t *testing.T, a, b string) string {
	t.Helper()
	ka, err := ParseSecretKey(a)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := ParseSecretKey(b)
	if err != nil {
		t.Fatal(err)
	}
	raw := append(append([]byte{}, ka.key[:32]...), kb.key[32:]...)
	return base64.StdEncoding.EncodeToString(raw)
}

func TestParsePublicKey(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"nix file", nixPublic, true},
		{"trailing newline", nixPublic + "\n", true},
		{"surrounding space", "  " + nixPublic + "\n\n", true},
		{"no colon", "test-1", false},
		{"empty name", ":eBu74G9+867Kf93OqEUtk09TBiV+ujSna2VXNlR6O2g=", false},
		{"tab in name", "test\t1:eBu74G9+867Kf93OqEUtk09TBiV+ujSna2VXNlR6O2g=", false},
		{"secret key instead", nixSecret, false},
		{"31 bytes", "test-1:eBu74G9+867Kf93OqEUtk09TBiV+ujSna2VXNlR6O2==", false},
		{"bad char", "test-1:eBu74G9+867Kf93OqEUtk09TBiV+ujSna2VXNlR6O2*=", false},
		{"url alphabet", "test-1:eBu74G9-867Kf93OqEUtk09TBiV_ujSna2VXNlR6O2g=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePublicKey(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("ParsePublicKey(%q) = %v, want ErrInvalidKey", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePublicKey(%q): %v", tt.in, err)
			}
			if k.String() != nixPublic || k.Name() != "test-1" {
				t.Errorf("got %q named %q", k.String(), k.Name())
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	for _, name := range []string{"", "a:b", "a b", "a\nb", "\u00a0x"} {
		if _, err := GenerateKey(name, nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("GenerateKey(%q) = %v, want ErrInvalidKey", name, err)
		}
	}
	seed := bytes.Repeat([]byte{7}, 32)
	a, err := GenerateKey("cache.example.org-1", bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey("cache.example.org-1", bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("same seed gave %q and %q", a, b)
	}
	c, err := GenerateKey("cache.example.org-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() == a.String() {
		t.Error("random key equals the fixed-seed key")
	}
	back, err := ParseSecretKey(c.String())
	if err != nil {
		t.Fatalf("ParseSecretKey(String()): %v", err)
	}
	if back.String() != c.String() || !back.Public().Equal(c.Public()) {
		t.Errorf("round trip changed the key")
	}
	if _, err := GenerateKey("x", bytes.NewReader(seed[:10])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short randomness: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestVerify(t *testing.T) {
	sk, err := ParseSecretKey(nixSecret)
	if err != nil {
		t.Fatal(err)
	}
	pk := sk.Public()
	renamed, err := ParsePublicKey("test-2" + nixPublic[len("test-1"):])
	if err != nil {
		t.Fatal(err)
	}
	fp := []byte(nixFingerprint)
	good := sk.Sign(fp)
	tampered := []byte(good)
	tampered[len(tampered)-4] ^= 'A' ^ 'B'
	tests := []struct {
		name string
		key  PublicKey
		fp   string
		sig  string
		want bool
	}{
		{"good", pk, nixFingerprint, good, true},
		{"golden", pk, nixFingerprint, nixSig, true},
		{"other fingerprint", pk, nixFingerprint + "x", good, false},
		{"tampered signature", pk, nixFingerprint, string(tampered), false},
		{"same key, other name", renamed, nixFingerprint, good, false},
		{"signature renamed", renamed, nixFingerprint, "test-2" + good[len("test-1"):], true},
		{"short signature", pk, nixFingerprint, "test-1:AAAA", false},
		{"no colon", pk, nixFingerprint, good[len("test-1:"):], false},
		{"empty", pk, nixFingerprint, "", false},
		{"zero key", PublicKey{}, nixFingerprint, good, false},
		{"zero key, empty name", PublicKey{}, nixFingerprint, good[len("test-1"):], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.Verify([]byte(tt.fp), tt.sig); got != tt.want {
				t.Errorf("Verify(%q, %q) = %v, want %v", tt.fp, tt.sig, got, tt.want)
			}
		})
	}
}

func TestSecretKeyNotLogged(t *testing.T) {
	sk, err := ParseSecretKey(nixSecret)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "key", sk)
	if strings.Contains(buf.String(), nixSecret[len("test-1:"):len("test-1:")+16]) || !strings.Contains(buf.String(), "test-1") {
		t.Errorf("slog output %q leaks the key or omits its name", buf.String())
	}
}

func TestZeroSecretKey(t *testing.T) {
	var k SecretKey
	if got := k.Public(); got.Verify([]byte("x"), ":AAAA") {
		t.Error("zero key's public half verifies something")
	}
	if err := WriteKeyFiles(k, t.TempDir()+"/sk", t.TempDir()+"/pk"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("WriteKeyFiles(zero key) = %v, want ErrInvalidKey", err)
	}
}
