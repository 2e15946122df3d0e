package nixhash

import "testing"

func FuzzParse(f *testing.F) {
	for _, fm := range forms {
		name := fm.algo.String()
		f.Add(name + ":" + fm.nix32)
		f.Add(name + ":" + fm.hex)
		f.Add(name + ":" + fm.b64)
		f.Add(fm.sri)
	}
	f.Add("sha256:2" + forms[2].nix32[1:])
	f.Add("sha256-" + forms[2].hex)
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			return
		}
		if h.IsZero() || len(h.Digest()) != h.Algo().Size() {
			t.Fatalf("Parse(%q) = %v with algo %v and %d digest bytes", s, h, h.Algo(), len(h.Digest()))
		}
		for _, form := range []string{h.String(), h.Algo().String() + ":" + h.Hex(), h.SRI()} {
			h2, err := Parse(form)
			if err != nil || h2 != h {
				t.Fatalf("Parse(%q) = %v, %v; want %v (from %q)", form, h2, err, h, s)
			}
		}
	})
}
