package narinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.narinfo")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(strings.ReplaceAll(base, "\n", "\r\n")))
	f.Add([]byte(edit(narNix32, narSRI, fileHash, "sha256-eR3tjyGvQnm6n/OZF8tiO2OTTyz0DEX1LYFfNc2GuDo=")))
	f.Add([]byte(edit(narNix32, narHex, "References:", "Deriver: unknown-deriver\nX: y\nReferences:")))
	f.Add([]byte(dropLine("File")))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		ni, err := Parse(data)
		if err != nil {
			return
		}
		text := ni.AppendText(nil)
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(AppendText) failed: %v\ninput %q\nrendered %q", err, data, text)
		}
		if !reflect.DeepEqual(normalize(ni), normalize(again)) {
			t.Fatalf("round trip changed the narinfo:\n%#v\n%#v", ni, again)
		}
		if string(again.AppendText(nil)) != string(text) {
			t.Fatalf("AppendText is not stable: %q", text)
		}
		if ni.HashPart() == "" {
			t.Fatalf("HashPart empty for parsed StorePath %q", ni.StorePath)
		}
		fp, err := ni.AppendFingerprint(nil)
		if err == nil && !strings.HasPrefix(string(fp), "1;"+ni.StorePath+";") {
			t.Fatalf("fingerprint %q", fp)
		}
	})
}

// normalize makes empty slices nil, so nil and empty compare equal.
func normalize(ni *NarInfo) NarInfo {
	n := *ni
	if len(n.References) == 0 {
		n.References = nil
	}
	if len(n.Sigs) == 0 {
		n.Sigs = nil
	}
	return n
}
