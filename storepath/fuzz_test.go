package storepath

import "testing"

func FuzzParseBase(f *testing.F) {
	f.Add(validHash + "-refs.txt")
	f.Add(validHash + "-..-x")
	f.Add(validHash + "-.")
	f.Add("e" + validHash[1:] + "-x")
	f.Fuzz(func(t *testing.T, base string) {
		p, err := ParseBase(base)
		if err != nil {
			return
		}
		if p.Base() != base {
			t.Fatalf("ParseBase(%q).Base() = %q", base, p.Base())
		}
		if err := ValidateName(p.Name); err != nil {
			t.Fatalf("ParseBase(%q) accepted name %q: %v", base, p.Name, err)
		}
		q, err := Parse(DefaultStoreDir, p.Absolute(DefaultStoreDir))
		if err != nil || q != p {
			t.Fatalf("Parse(Absolute(%q)) = %+v, %v", base, q, err)
		}
	})
}
