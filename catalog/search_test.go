package catalog

import (
	"strings"
	"testing"
)

func TestSearchPattern(t *testing.T) {
	for q, want := range map[string]string{
		"":         "%%",
		"hello":    "%hello%",
		"a_b%c":    `%a\_b\%c%`,
		`back\sl`:  `%back\\sl%`,
		"g++-13.2": "%g++-13.2%",
	} {
		if got := SearchPattern(q); got != want {
			t.Errorf("SearchPattern(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestSearchCursor(t *testing.T) {
	hash := strings.Repeat("a", 32)
	for after, want := range map[string][3]string{
		"":                  {"", "", "ok"},
		hash + "-hello-2.1": {"hello-2.1", hash, "ok"},
		hash + "-x":         {"x", hash, "ok"},
		hash + "-":          {"", "", ""},
		hash:                {"", "", ""},
		"short-name":        {"", "", ""},
		hash + "_hello":     {"", "", ""},
	} {
		name, h, ok := SearchCursor(after)
		if got := [3]string{name, h, map[bool]string{true: "ok"}[ok]}; got != want {
			t.Errorf("SearchCursor(%q) = %q, want %q", after, got, want)
		}
	}
}

func TestPathName(t *testing.T) {
	hash := strings.Repeat("b", 32)
	for _, c := range []struct{ store, want string }{
		{"/nix/store/" + hash + "-hello-2.12", "hello-2.12"},
		{"/opt/store/" + hash + "-x", "x"},
		{"/nix/store/other", "/nix/store/other"},
	} {
		if got := PathName(Path{HashPart: hash, StorePath: c.store}); got != c.want {
			t.Errorf("PathName(%s) = %q, want %q", c.store, got, c.want)
		}
	}
}
