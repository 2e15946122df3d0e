package narinfo

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storepath"
)

// base is protocol.md's example narinfo, written by Nix 2.8.
const base = `StorePath: /nix/store/5sbpggnbip0823i5hiz50vgjqgq7kd7c-refs.txt
URL: nar/0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br.nar.zst
Compression: zstd
FileHash: sha256:0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br
FileSize: 137
NarHash: sha256:1awaic5pspc5vb6rjnd0icr7426ndaxa27fwwxn26dbs3fdczvdh
NarSize: 176
References: 5s9fix2ywznmsmqgqd48gnim7h2m7352-srcdir
Sig: test-cache-1:ZhlQ5dJD4bD0dX4VgGkxluaqpwMVaxvqND6Ypfzxr58vQbHhYrUIrsoBcrmGMGRhpOTijnlyZp13IEDEW6FdBw==
CA: text:sha256:1qsfp0hzabhc1ihqd9zlqw3bvx58jibalk00daqkln4xn1xgiapj
`

const (
	narNix32 = "sha256:1awaic5pspc5vb6rjnd0icr7426ndaxa27fwwxn26dbs3fdczvdh"
	narHex   = "sha256:b0edcf9a1b7a35236ce7dc1da1ba6ad60872328ba05999cdda855d7d0b8b8aab"
	narB64   = "sha256:sO3Pmht6NSNs59wdobpq1ghyMougWZnN2oVdfQuLiqs="
	narSRI   = "sha256-sO3Pmht6NSNs59wdobpq1ghyMougWZnN2oVdfQuLiqs="
	fileHash = "sha256:0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br"
	hashPart = "5sbpggnbip0823i5hiz50vgjqgq7kd7c"
	refBase  = "5s9fix2ywznmsmqgqd48gnim7h2m7352-srcdir"
)

// edit returns base with the first occurrence of each old replaced by new.
func edit(pairs ...string) string {
	s := base
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			panic("edit: " + pairs[i] + " not in base")
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// dropLine returns base without the line starting with prefix.
func dropLine(prefix string) string {
	var out []string
	for _, l := range strings.SplitAfter(base, "\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(*NarInfo) bool
		// canonical is AppendText's expected output; "" means base.
		canonical string
	}{
		{"canonical", base, nil, ""},
		{"base16 NarHash", edit(narNix32, narHex), nil, ""},
		{"upper-case base16 NarHash", edit(narNix32, "sha256:"+strings.ToUpper(narHex[7:])), nil, ""},
		{"base64 NarHash", edit(narNix32, narB64), nil, ""},
		{"SRI NarHash", edit(narNix32, narSRI), nil, ""},
		{"SRI FileHash", edit(fileHash, "sha256-eR3tjyGvQnm6n/OZF8tiO2OTTyz0DEX1LYFfNc2GuDo="), nil, ""},
		{"CRLF", strings.ReplaceAll(base, "\n", "\r\n"), nil, ""},
		{"no final newline", strings.TrimSuffix(base, "\n"), nil, ""},
		{"blank lines", "\n\r\n" + strings.ReplaceAll(base, "\n", "\n\n"), nil, ""},
		{"no space after colon", edit("StorePath: ", "StorePath:", "URL: ", "URL:\t "), nil, ""},
		{"unknown keys", "X-Custom: 1\n:\nKey:\n" + base + "Future: a:b\n", nil, ""},
		{"reversed order", reverseLines(base), nil, ""},
		{"missing FileHash and FileSize", dropLine("File"), func(ni *NarInfo) bool {
			return ni.FileHash.IsZero() && ni.FileSize == 0
		}, dropLine("File")},
		{"FileSize without FileHash", dropLine("FileHash"), func(ni *NarInfo) bool {
			return ni.FileHash.IsZero() && ni.FileSize == 137
		}, dropLine("FileHash")},
		{"missing Compression", dropLine("Compression"), func(ni *NarInfo) bool {
			return ni.Compression == ""
		}, dropLine("Compression")},
		{"unknown-deriver", edit("References:", "Deriver: unknown-deriver\nReferences:"), func(ni *NarInfo) bool {
			return ni.Deriver == ""
		}, ""},
		{"deriver", edit("Sig:", "Deriver: "+hashPart+"-x.drv\nSig:"), func(ni *NarInfo) bool {
			return ni.Deriver == hashPart+"-x.drv"
		}, edit("Sig:", "Deriver: "+hashPart+"-x.drv\nSig:")},
		{"System", edit("Sig:", "System: x86_64-linux\nSig:"), func(ni *NarInfo) bool {
			return ni.System == "x86_64-linux"
		}, edit("Sig:", "System: x86_64-linux\nSig:")},
		{"empty References", edit("References: "+refBase, "References:"), func(ni *NarInfo) bool {
			return ni.References == nil
		}, edit("References: "+refBase, "References: ")},
		{"References missing", dropLine("References"), func(ni *NarInfo) bool {
			return ni.References == nil
		}, edit("References: "+refBase, "References: ")},
		{"References empty then set", edit("References:", "References: \nReferences:"), nil, ""},
		{"extra spaces in References", edit("References: "+refBase, "References:  "+refBase+"  "+refBase+" "),
			func(ni *NarInfo) bool { return len(ni.References) == 2 },
			edit("References: "+refBase, "References: "+refBase+" "+refBase)},
		{"repeated key: last wins", edit("URL: ", "URL: first\nURL: "), nil, ""},
		{"repeated StorePath", "StorePath: /nix/store/" + hashPart + "-other\n" + base, nil, ""},
		{"two Sigs in file order", edit("CA:", "Sig: a-key:AAAA\nCA:"), func(ni *NarInfo) bool {
			return len(ni.Sigs) == 2 && ni.Sigs[1] == "a-key:AAAA"
		}, edit("CA:", "Sig: a-key:AAAA\nCA:")},
		{"empty CA then CA", edit("CA:", "CA: \nCA:"), nil, ""},
		{"no CA", dropLine("CA"), func(ni *NarInfo) bool { return ni.CA == "" }, dropLine("CA")},
		{"leading zeros", edit("NarSize: 176", "NarSize: 000176"), nil, ""},
		{"huge NarSize", edit("NarSize: 176", "NarSize: 18446744073709551615"), func(ni *NarInfo) bool {
			return ni.NarSize == 1<<64-1
		}, edit("NarSize: 176", "NarSize: 18446744073709551615")},
		{"custom store dir", strings.ReplaceAll(base, "/nix/store/", "/custom/store/"), func(ni *NarInfo) bool {
			return ni.HashPart() == hashPart
		}, strings.ReplaceAll(base, "/nix/store/", "/custom/store/")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil && !tt.check(ni) {
				t.Errorf("Parse gave %#v", ni)
			}
			want := tt.canonical
			if want == "" {
				want = base
			}
			if got := ni.String(); got != want {
				t.Errorf("AppendText:\n%s\nwant:\n%s", got, want)
			}
			if ni.HashPart() == "" {
				t.Error("HashPart is empty")
			}
		})
	}
}

func reverseLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Reverse(lines)
	return strings.Join(lines, "\n") + "\n"
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, in string
		also     error // another sentinel the error must match
	}{
		{"empty body", "", nil},
		{"blank lines only", "\n\r\n\n", nil},
		{"line without colon", edit("CA:", "garbage\nCA:"), nil},
		{"space-only line", edit("CA:", " \nCA:"), nil},
		{"missing StorePath", dropLine("StorePath"), nil},
		{"missing URL", dropLine("URL"), nil},
		{"empty URL", edit("URL: nar/0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br.nar.zst", "URL: "), nil},
		{"missing NarHash", dropLine("NarHash"), nil},
		{"missing NarSize", dropLine("NarSize"), nil},
		{"NarSize 0", edit("NarSize: 176", "NarSize: 0"), nil},
		{"negative NarSize", edit("NarSize: 176", "NarSize: -1"), nil},
		{"plus NarSize", edit("NarSize: 176", "NarSize: +1"), nil},
		{"hex NarSize", edit("NarSize: 176", "NarSize: 0x10"), nil},
		{"NarSize overflow", edit("NarSize: 176", "NarSize: 18446744073709551616"), nil},
		{"NarSize trailing space", edit("NarSize: 176", "NarSize: 176 "), nil},
		{"empty FileSize", edit("FileSize: 137", "FileSize: "), nil},
		{"bare NarHash", edit(narNix32, narNix32[7:]), nixhash.ErrInvalid},
		{"NarHash wrong length", edit(narNix32, narNix32[:58]), nixhash.ErrInvalid},
		{"NarHash unknown algo", edit(narNix32, "sha384:"+narNix32[7:]), nixhash.ErrInvalid},
		{"empty FileHash", edit(fileHash, ""), nixhash.ErrInvalid},
		{"relative StorePath", edit("StorePath: /nix/store", "StorePath: nix/store"), storepath.ErrInvalid},
		{"StorePath basename only", edit("StorePath: /nix/store/", "StorePath: "), storepath.ErrInvalid},
		{"StorePath in root", edit("StorePath: /nix/store/", "StorePath: /"), storepath.ErrInvalid},
		{"StorePath unclean dir", edit("StorePath: /nix/store/", "StorePath: /nix//store/"), storepath.ErrInvalid},
		{"StorePath subpath", edit("refs.txt", "refs.txt/bin"), storepath.ErrInvalid},
		{"StorePath bad hash char", edit(hashPart+"-refs", "e"+hashPart[1:]+"-refs"), storepath.ErrInvalid},
		{"StorePath short hash", edit(hashPart+"-refs", hashPart[1:]+"-refs"), storepath.ErrInvalid},
		{"StorePath bad name char", edit("refs.txt", "refs txt"), storepath.ErrInvalid},
		{"StorePath CR inside", edit("refs.txt", "refs\r.txt"), storepath.ErrInvalid},
		{"StorePath name dot", edit("refs.txt", "."), storepath.ErrInvalid},
		{"empty StorePath", edit("StorePath: /nix/store/"+hashPart+"-refs.txt", "StorePath: "), storepath.ErrInvalid},
		{"bad reference", edit("References: "+refBase, "References: "+refBase+" /nix/store/"+refBase), storepath.ErrInvalid},
		{"reference with tab", edit("References: "+refBase, "References: "+refBase+"\t"+refBase), storepath.ErrInvalid},
		{"duplicate References", edit("Sig:", "References: "+refBase+"\nSig:"), nil},
		{"References set then empty", edit("Sig:", "References: \nSig:"), nil},
		{"duplicate CA", edit("Sig:", "CA: fixed:r:"+narNix32+"\nSig:"), nil},
		{"bad Deriver", edit("Sig:", "Deriver: x.drv\nSig:"), storepath.ErrInvalid},
		{"empty Deriver", edit("Sig:", "Deriver: \nSig:"), storepath.ErrInvalid},
		{"Sig without colon", edit("test-cache-1:", "test-cache-1"), nil},
		{"Sig empty name", edit("test-cache-1:", ":"), nil},
		{"Sig empty data", edit("Sig: test-cache-1:ZhlQ5dJD4bD0dX4VgGkxluaqpwMVaxvqND6Ypfzxr58vQbHhYrUIrsoBcrmGMGRhpOTijnlyZp13IEDEW6FdBw==",
			"Sig: test-cache-1:"), nil},
		{"empty Sig", edit("Sig: test-cache-1:ZhlQ5dJD4bD0dX4VgGkxluaqpwMVaxvqND6Ypfzxr58vQbHhYrUIrsoBcrmGMGRhpOTijnlyZp13IEDEW6FdBw==",
			"Sig: "), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni, err := Parse([]byte(tt.in))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %+v, %v; want ErrInvalid", ni, err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Errorf("error %v does not match %v", err, tt.also)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestParseKeepsNoPointerToInput(t *testing.T) {
	data := []byte(base)
	ni, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := *ni
	want.References = append([]string(nil), ni.References...)
	want.Sigs = append([]string(nil), ni.Sigs...)
	for i := range data {
		data[i] = 'x'
	}
	if !reflect.DeepEqual(*ni, want) || ni.URL != "nar/0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br.nar.zst" {
		t.Errorf("changing the input changed the result: %#v", ni)
	}
}

func TestFingerprintRejects(t *testing.T) {
	good, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	md5, _ := nixhash.Parse("md5:900150983cd24fb0d6963f7d28e17f72")
	tests := []struct {
		name string
		mod  func(*NarInfo)
	}{
		{"relative StorePath", func(ni *NarInfo) { ni.StorePath = ni.StorePath[1:] }},
		{"bad StorePath", func(ni *NarInfo) { ni.StorePath = "/nix/store/x" }},
		{"zero NarHash", func(ni *NarInfo) { ni.NarHash = nixhash.Hash{} }},
		{"md5 NarHash", func(ni *NarInfo) { ni.NarHash = md5 }},
		{"NarSize 0", func(ni *NarInfo) { ni.NarSize = 0 }},
		{"bad reference", func(ni *NarInfo) { ni.References = []string{"a", "b"} }},
	}
	for _, tt := range tests {
		ni := *good
		tt.mod(&ni)
		dst := []byte("keep")
		out, err := ni.AppendFingerprint(dst)
		if !errors.Is(err, ErrInvalid) || string(out) != "keep" {
			t.Errorf("%s: AppendFingerprint = %q, %v; want ErrInvalid and dst unchanged", tt.name, out, err)
		}
	}
	if (&NarInfo{StorePath: "nix/store/" + hashPart + "-x"}).HashPart() != "" {
		t.Error("HashPart of a relative path is not empty")
	}
}

func TestAllocs(t *testing.T) {
	data := []byte(base)
	// The string copy of data, the NarInfo, the References and Sigs slices.
	if a := testing.AllocsPerRun(100, func() { _, _ = Parse(data) }); a > 4 {
		t.Errorf("Parse: %v allocations, want at most 4", a)
	}
	ni, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(100, func() { buf = ni.AppendText(buf[:0]) }); a != 0 {
		t.Errorf("AppendText: %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { buf, _ = ni.AppendFingerprint(buf[:0]) }); a != 0 {
		t.Errorf("AppendFingerprint: %v allocations, want 0", a)
	}
}
