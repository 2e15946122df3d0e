package web

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/nar"
)

// listingOf returns the .ls listing, as the cache computes it, of a NAR
// made of headers (regular files get Size bytes of 'x').
func listingOf(t *testing.T, headers ...nar.Header) string {
	t.Helper()
	var archive, ls bytes.Buffer
	w := nar.NewWriter(&archive)
	for _, h := range headers {
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, strings.Repeat("x", int(h.Size)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nar.WriteListing(&ls, &archive); err != nil {
		t.Fatal(err)
	}
	return ls.String()
}

func TestParseListing(t *testing.T) {
	tree := listingOf(t,
		nar.Header{Path: "/", Type: nar.TypeDirectory},
		nar.Header{Path: "/bin", Type: nar.TypeDirectory},
		nar.Header{Path: "/bin/hello", Type: nar.TypeRegular, Executable: true, Size: 10},
		nar.Header{Path: "/lib", Type: nar.TypeSymlink, LinkTarget: "/nix/store/x-glibc/lib"},
		nar.Header{Path: "/share", Type: nar.TypeDirectory},
		nar.Header{Path: "/share/doc", Type: nar.TypeDirectory},
		nar.Header{Path: "/share/doc/README", Type: nar.TypeRegular, Size: 3},
	)
	want := []Entry{
		{Depth: 0, Type: "directory"},
		{Name: "bin", Depth: 1, Type: "directory"},
		{Name: "hello", Depth: 2, Type: "regular", Size: 10, Executable: true},
		{Name: "lib", Depth: 1, Type: "symlink", Target: "/nix/store/x-glibc/lib"},
		{Name: "share", Depth: 1, Type: "directory"},
		{Name: "doc", Depth: 2, Type: "directory"},
		{Name: "README", Depth: 3, Type: "regular", Size: 3},
	}
	for _, c := range []struct {
		name, ls string
		want     []Entry
	}{
		{"as the cache writes it", tree, want},
		// Newer Nix writes keys in sorted order: entries before type.
		{"keys sorted", `{"root":{"entries":{"bin":{"entries":{"hello":{"executable":true,"narOffset":400,` +
			`"size":10,"type":"regular"}},"type":"directory"},"lib":{"target":"/nix/store/x-glibc/lib",` +
			`"type":"symlink"},"share":{"entries":{"doc":{"entries":{"README":{"size":3,"type":"regular"}},` +
			`"type":"directory"}},"type":"directory"}},"type":"directory"},"version":1}`, want},
		{"a single file", listingOf(t, nar.Header{Path: "/", Type: nar.TypeRegular, Size: 5}),
			[]Entry{{Type: "regular", Size: 5}}},
		// Unknown keys and values of the wrong type are left out.
		{"odd values", `{"version":1,"extra":[1,{"x":[2]}],"root":{"type":"regular","size":"big","narOffset":5,"x":null}}`,
			[]Entry{{Type: "regular"}}},
		{"markup in names", `{"version":1,"root":{"type":"directory","entries":{"<b>\"x\"</b>":{"type":"symlink","target":"<i>"}}}}`,
			[]Entry{{Type: "directory"}, {Name: `<b>"x"</b>`, Depth: 1, Type: "symlink", Target: "<i>"}}},
	} {
		got, err := parseListing(strings.NewReader(c.ls))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if got.Truncated || !slices.Equal(got.Entries, c.want) {
			t.Errorf("%s: got %+v (truncated %v), want %+v", c.name, got.Entries, got.Truncated, c.want)
		}
	}
}

// TestParseListingBounds checks that a listing too long or too deep is
// cut short, and that a broken one returns what came before the break.
func TestParseListingBounds(t *testing.T) {
	var wide strings.Builder
	wide.WriteString(`{"version":1,"root":{"type":"directory","entries":{`)
	for i := range ListingCap + 10 {
		if i > 0 {
			wide.WriteByte(',')
		}
		fmt.Fprintf(&wide, `"f%05d":{"type":"regular","size":%d}`, i, i)
	}
	wide.WriteString(`}}}`)
	got, err := parseListing(strings.NewReader(wide.String()))
	if err != nil || !got.Truncated || len(got.Entries) != ListingCap || got.Entries[ListingCap-1].Name != fmt.Sprintf("f%05d", ListingCap-2) {
		t.Errorf("wide: %d entries, truncated %v, %v", len(got.Entries), got.Truncated, err)
	}

	deep := `{"version":1,"root":` + strings.Repeat(`{"type":"directory","entries":{"d":`, 1000) +
		`{"type":"regular"}` + strings.Repeat(`}}`, 1000) + `}`
	got, err = parseListing(strings.NewReader(deep))
	if err != nil || !got.Truncated || len(got.Entries) != maxListingDepth+1 {
		t.Errorf("deep: %d entries, truncated %v, %v", len(got.Entries), got.Truncated, err)
	}

	for _, broken := range []string{
		`{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular"},"b":`,
		`{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular"},"b":[}}}`,
		`{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular"},"b":{"type":"regular"}}}}}`,
	} {
		got, err := parseListing(strings.NewReader(broken))
		if len(got.Entries) < 2 || got.Entries[1].Name != "a" {
			t.Errorf("%s: entries %+v", broken, got.Entries)
		}
		if err == nil && !strings.HasSuffix(broken, "}}}}}") {
			t.Errorf("%s: no error", broken)
		}
	}
	for _, bad := range []string{"", "[]", `"x"`, `{"root":[]}`, `{"root":{"type":"directory","entries":[]}}`} {
		if _, err := parseListing(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
