package catalog

import "strings"

// SearchPattern returns the LIKE pattern (with '\' as its escape
// character) that matches the names containing query: '%', '_' and '\'
// in query stand for themselves.
func SearchPattern(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 2)
	b.WriteByte('%')
	for i := 0; i < len(query); i++ {
		switch c := query[i]; c {
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('%')
	return b.String()
}

// SearchCursor splits the after argument of SearchPaths, the base name
// ("<hash part>-<name>") of the last path of the previous page, into the
// name and hash part that results must sort after. "" (the first page)
// gives two empty strings. ok is false for anything else that is not a
// hash part, a '-' and a name.
func SearchCursor(after string) (name, hashPart string, ok bool) {
	if after == "" {
		return "", "", true
	}
	const hashLen = 32
	if len(after) < hashLen+2 || after[hashLen] != '-' {
		return "", "", false
	}
	return after[hashLen+1:], after[:hashLen], true
}

// PathName returns the name of a store path: what follows its hash part
// and '-'.
func PathName(p Path) string {
	_, name, ok := strings.Cut(p.StorePath, "/"+p.HashPart+"-")
	if !ok {
		return p.StorePath
	}
	return name
}
