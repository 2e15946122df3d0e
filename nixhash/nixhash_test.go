package nixhash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// forms holds, per algorithm, the digest of "abc" in every form Nix 2.8.0
// prints (nix hash to-base16/to-base32/to-base64/to-sri).
var forms = []struct {
	algo                 Algo
	hex, nix32, b64, sri string
}{
	{MD5, "900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch",
		"kAFQmDzST7DWlj99KOF/cg==", "md5-kAFQmDzST7DWlj99KOF/cg=="},
	{SHA1, "a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9",
		"qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0="},
	{SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
		"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
		"sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="},
	{SHA512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
		"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		"2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
		"3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==",
		"sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="},
}

func TestParseForms(t *testing.T) {
	for _, f := range forms {
		raw, _ := hex.DecodeString(f.hex)
		want, err := New(f.algo, raw)
		if err != nil {
			t.Fatal(err)
		}
		name := f.algo.String()
		inputs := []string{
			name + ":" + f.nix32,
			name + ":" + f.hex,
			name + ":" + strings.ToUpper(f.hex),
			name + ":" + f.b64,
			f.sri,
			name + "-" + strings.TrimRight(f.b64, "="), // SRI without padding, as Nix accepts
		}
		for _, in := range inputs {
			h, err := Parse(in)
			if err != nil {
				t.Errorf("Parse(%q): %v", in, err)
				continue
			}
			if h != want {
				t.Errorf("Parse(%q) = %v, want %v", in, h, want)
			}
			if got := h.String(); got != name+":"+f.nix32 {
				t.Errorf("Parse(%q).String() = %q", in, got)
			}
		}
		if want.Algo() != f.algo || want.Nix32() != f.nix32 || want.Hex() != f.hex || want.SRI() != f.sri {
			t.Errorf("%s renders as %v %q %q %q", name, want.Algo(), want.Nix32(), want.Hex(), want.SRI())
		}
		if !bytes.Equal(want.Digest(), raw) || want.IsZero() {
			t.Errorf("%s: Digest() = %x, IsZero() = %v", name, want.Digest(), want.IsZero())
		}
		if got := string(want.AppendText([]byte("x "))); got != "x "+name+":"+f.nix32 {
			t.Errorf("AppendText = %q", got)
		}
	}
}

func TestParseReject(t *testing.T) {
	sha := "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
	hexs := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	tests := []string{
		"",
		sha,                         // no algorithm: a bare hash makes a narinfo corrupt
		"sha256",                    // no separator
		"SHA256:" + sha,             // algorithm names are lower case
		"sha384:" + sha,             // unknown algorithm
		"sha256:",                   // empty digest
		"sha256:" + sha[1:],         // 51 chars: no form has that length
		"sha256:" + sha + "0",       // 53 chars
		"sha256:2" + sha[1:],        // nix32 overflow
		"sha256:e" + sha[1:],        // nix32 bad char
		"sha256:" + hexs[:63] + "g", // bad hex digit
		"sha256: " + sha[1:],
		"sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0",   // unpadded needs SRI
		"sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF*0=",  // bad base64 char
		"sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0==", // too much padding
		"sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAF",     // too short
		"sha256-" + hexs, // SRI is base64 only
		"md5-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", // wrong size for md5
		"sha256-",
		"-abc",
		":abc",
	}
	for _, in := range tests {
		if h, err := Parse(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", in, h, err)
		}
	}
}

func TestAlgo(t *testing.T) {
	for _, f := range forms {
		a, err := ParseAlgo(f.algo.String())
		if err != nil || a != f.algo {
			t.Errorf("ParseAlgo(%q) = %v, %v", f.algo.String(), a, err)
		}
		if a.Size() != len(f.hex)/2 {
			t.Errorf("%v.Size() = %d, want %d", a, a.Size(), len(f.hex)/2)
		}
	}
	if _, err := ParseAlgo("blake3"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseAlgo(blake3) = %v", err)
	}
	if Algo(0).Size() != 0 || Algo(9).Size() != 0 || Algo(9).String() != "Algo(9)" {
		t.Errorf("unknown algorithms: %d %d %q", Algo(0).Size(), Algo(9).Size(), Algo(9).String())
	}
}

func TestNew(t *testing.T) {
	sum := sha256.Sum256([]byte("abc"))
	h, err := New(SHA256, sum[:])
	if err != nil || h != NewSHA256(sum) {
		t.Fatalf("New(SHA256) = %v, %v; NewSHA256() = %v", h, err, NewSHA256(sum))
	}
	if _, err := New(SHA256, sum[:31]); !errors.Is(err, ErrInvalid) {
		t.Errorf("New with 31 bytes: %v", err)
	}
	if _, err := New(0, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("New with no algorithm: %v", err)
	}
	if h1, _ := New(SHA1, make([]byte, 20)); h1 == (Hash{algo: SHA256}) || h1.IsZero() {
		t.Error("hashes of different algorithms compare equal, or zero digest counts as zero Hash")
	}
	// Digest returns a copy.
	d := h.Digest()
	d[0] ^= 1
	if h != NewSHA256(sum) {
		t.Error("modifying Digest() changed the Hash")
	}
}

func TestZero(t *testing.T) {
	var z Hash
	if !z.IsZero() || z.String() != "" || z.SRI() != "" || z.Hex() != "" || z.Nix32() != "" ||
		len(z.Digest()) != 0 || len(z.AppendText(nil)) != 0 {
		t.Errorf("zero Hash renders as %q %q %q %q", z.String(), z.SRI(), z.Hex(), z.Nix32())
	}
}

func TestNoAllocs(t *testing.T) {
	inputs := []string{forms[2].algo.String() + ":" + forms[2].nix32, forms[2].sri,
		"sha256:" + forms[2].hex, "sha256:" + forms[2].b64}
	buf := make([]byte, 0, 128)
	h := NewSHA256(sha256.Sum256(nil))
	for _, in := range inputs {
		if a := testing.AllocsPerRun(100, func() { _, _ = Parse(in) }); a != 0 {
			t.Errorf("Parse(%q): %v allocations, want 0", in, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { buf = h.AppendText(buf[:0]) }); a != 0 {
		t.Errorf("AppendText: %v allocations, want 0", a)
	}
}
