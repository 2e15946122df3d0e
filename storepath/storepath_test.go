package storepath

import (
	"errors"
	"strings"
	"testing"
)

const validHash = "5sbpggnbip0823i5hiz50vgjqgq7kd7c"

func TestParseBase(t *testing.T) {
	tests := []struct {
		base string
		name string
	}{
		{validHash + "-refs.txt", "refs.txt"},
		{validHash + "-a", "a"},
		{validHash + "-" + strings.Repeat("x", MaxNameLen), strings.Repeat("x", MaxNameLen)},
		{validHash + "-python3.11-foo-1.0+git=abc?_", "python3.11-foo-1.0+git=abc?_"},
		{validHash + "-.config", ".config"},
		{validHash + "-..a", "..a"},
		{validHash + "--", "-"},
		{validHash + "-hello.drv", "hello.drv"},
	}
	for _, tt := range tests {
		p, err := ParseBase(tt.base)
		if err != nil {
			t.Errorf("ParseBase(%q): %v", tt.base, err)
			continue
		}
		if p.Hash != validHash || p.Name != tt.name || p.Base() != tt.base || p.String() != tt.base {
			t.Errorf("ParseBase(%q) = %+v", tt.base, p)
		}
		if got := p.Absolute(DefaultStoreDir); got != "/nix/store/"+tt.base {
			t.Errorf("Absolute = %q", got)
		}
	}
}

func TestParseBaseReject(t *testing.T) {
	tests := []struct{ why, base string }{
		{"empty", ""},
		{"hash only", validHash},
		{"empty name", validHash + "-"},
		{"no dash at 32", validHash + "xname"},
		{"short hash", validHash[1:] + "-name"},
		{"hash letter e", "e" + validHash[1:] + "-name"},
		{"hash letter o", "o" + validHash[1:] + "-name"},
		{"hash letter u", "u" + validHash[1:] + "-name"},
		{"hash letter t", "t" + validHash[1:] + "-name"},
		{"hash upper case", strings.ToUpper(validHash) + "-name"},
		{"name too long", validHash + "-" + strings.Repeat("x", MaxNameLen+1)},
		{"slash", validHash + "-a/b"},
		{"space", validHash + "-a b"},
		{"CR", validHash + "-name\r"},
		{"newline", validHash + "-name\n"},
		{"NUL", validHash + "-a\x00"},
		{"non-ASCII", validHash + "-caf\u00e9"},
		{"comma", validHash + "-a,b"},
		{"colon", validHash + "-a:b"},
		{"dot", validHash + "-."},
		{"dot dot", validHash + "-.."},
		{"dot dash", validHash + "-.-foo"},
		{"dot dot dash", validHash + "-..-foo"},
	}
	for _, tt := range tests {
		if p, err := ParseBase(tt.base); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseBase(%q) = %+v, %v; want ErrInvalid", tt.why, tt.base, p, err)
		}
	}
}

func TestValidateHashPart(t *testing.T) {
	if err := ValidateHashPart(validHash); err != nil {
		t.Errorf("ValidateHashPart(%q): %v", validHash, err)
	}
	for _, s := range []string{"", validHash[:31], validHash + "0", "e" + validHash[1:], "-" + validHash[1:]} {
		if err := ValidateHashPart(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateHashPart(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestParse(t *testing.T) {
	base := validHash + "-refs.txt"
	tests := []struct {
		dir, abs string
		ok       bool
	}{
		{"/nix/store", "/nix/store/" + base, true},
		{"/custom/dir", "/custom/dir/" + base, true},
		{"/nix/store", "/nix/store/" + base + "/bin/sh", false},
		{"/nix/store", "/nix/store//" + base, false},
		{"/nix/store", "/nix/storex/" + base, false},
		{"/nix/store", "/nix/" + base, false},
		{"/nix/store", "nix/store/" + base, false},
		{"/nix/store", base, false},
		{"/nix/store", "/nix/store/", false},
		{"/nix/store", "/nix/store", false},
		{"/custom/dir", "/nix/store/" + base, false},
	}
	for _, tt := range tests {
		p, err := Parse(tt.dir, tt.abs)
		if tt.ok != (err == nil) {
			t.Errorf("Parse(%q, %q) = %+v, %v; want ok=%v", tt.dir, tt.abs, p, err, tt.ok)
			continue
		}
		if !tt.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q, %q) error %v does not wrap ErrInvalid", tt.dir, tt.abs, err)
		}
		if tt.ok && p.Absolute(tt.dir) != tt.abs {
			t.Errorf("Parse(%q, %q).Absolute = %q", tt.dir, tt.abs, p.Absolute(tt.dir))
		}
	}
}

func TestValidateStoreDir(t *testing.T) {
	for _, d := range []string{"/nix/store", "/a", "/var/lib/nix-store.d"} {
		if err := ValidateStoreDir(d); err != nil {
			t.Errorf("ValidateStoreDir(%q): %v", d, err)
		}
	}
	for _, d := range []string{"", "/", "nix/store", "/nix/store/", "/nix//store", "/nix/./store", "/nix/../store", "./store"} {
		if err := ValidateStoreDir(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateStoreDir(%q) = %v, want ErrInvalid", d, err)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	abs := "/nix/store/" + validHash + "-refs.txt"
	if a := testing.AllocsPerRun(100, func() { _, _ = Parse(DefaultStoreDir, abs) }); a != 0 {
		t.Errorf("Parse: %v allocations, want 0", a)
	}
}

func BenchmarkParse(b *testing.B) {
	abs := "/nix/store/" + validHash + "-python3.11-requests-2.31.0"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(DefaultStoreDir, abs); err != nil {
			b.Fatal(err)
		}
	}
}
