package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/nix-cached/cached/storage"
)

// Bounds of the listing a path page shows.
const (
	// ListingCap is how many files a page lists.
	ListingCap = 2_000
	// maxListingDepth is the deepest directory a page descends into.
	maxListingDepth = 64
	// maxListingRead is how much of a .ls blob a page reads.
	maxListingRead = 16 << 20
)

// entry is one file of a listing, in the order of a depth-first walk.
type Entry struct {
	Name       string // "" for the root
	Depth      int    // 0 for the root
	Type       string // "directory", "regular", "symlink" (or what the listing says)
	Size       int64
	Executable bool
	Target     string // a symlink's
}

// Indent is the entry's indentation in rem, bounded so that a deep tree
// stays on the page.
func (e Entry) Indent() float64 { return 1.25 * float64(min(e.Depth, 24)) }

// listing is the file listing of a path as its page shows it.
type Listing struct {
	Entries   []Entry
	Truncated bool   // more than ListingCap entries (or deeper than maxListingDepth)
	Problem   string // why there is no listing, or why it stops early; "" if none
}

// readListing reads the .ls listing blob at key. Failures do not fail the
// page: they are shown (and logged when storage failed).
func (u *UI) readListing(ctx context.Context, key string) Listing {
	if key == "" {
		return Listing{Problem: "This NAR has no listing."}
	}
	f, err := u.store.Open(ctx, key)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return Listing{Problem: "The listing is missing from storage."}
		}
		u.log.WarnContext(ctx, "web: reading a listing", "key", key, "error", err)
		return Listing{Problem: "The listing could not be read."}
	}
	defer f.Close()
	l, err := parseListing(io.LimitReader(f, maxListingRead))
	if err != nil {
		l.Problem = "The listing could not be read to its end."
		if ctx.Err() == nil {
			u.log.WarnContext(ctx, "web: parsing a listing", "key", key, "error", err)
		}
	}
	return l
}

// errFull stops the parse once the page has enough entries.
var errFull = errors.New("listing: enough entries")

// parseListing reads a listing in the JSON format of Nix's .ls files,
// {"version":1,"root":NODE}, where a NODE is an object with "type" and,
// by type, "entries" (an object of NODEs by name), "size",
// "executable" or "target", in any order. It keeps up to ListingCap
// entries, depth first, entries of a directory in the order they come
// (Nix sorts them). What it read before an error is returned with it.
func parseListing(r io.Reader) (Listing, error) {
	p := listingParser{dec: json.NewDecoder(r)}
	err := p.document()
	if errors.Is(err, errFull) {
		err = nil
	}
	return p.l, err
}

// listingParser reads a listing token by token, so that memory stays
// bounded by ListingCap whatever the blob holds.
type listingParser struct {
	dec *json.Decoder
	l   Listing
}

func (p *listingParser) document() error {
	if err := p.delim('{'); err != nil {
		return err
	}
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		if key == "root" {
			if err := p.node("", 0); err != nil {
				return err
			}
			continue
		}
		if err := p.skip(); err != nil {
			return err
		}
	}
	return p.delim('}')
}

// node reads one NODE named name at depth.
func (p *listingParser) node(name string, depth int) error {
	if len(p.l.Entries) >= ListingCap || depth > maxListingDepth {
		p.l.Truncated = true
		return errFull
	}
	i := len(p.l.Entries)
	p.l.Entries = append(p.l.Entries, Entry{Name: name, Depth: depth})
	if err := p.delim('{'); err != nil {
		return err
	}
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		switch key {
		case "type":
			err = p.value(&p.l.Entries[i].Type)
		case "size":
			err = p.value(&p.l.Entries[i].Size)
		case "executable":
			err = p.value(&p.l.Entries[i].Executable)
		case "target":
			err = p.value(&p.l.Entries[i].Target)
		case "entries":
			err = p.entries(depth + 1)
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
	return p.delim('}')
}

// entries reads the object of a directory's NODEs.
func (p *listingParser) entries(depth int) error {
	if err := p.delim('{'); err != nil {
		return err
	}
	for p.dec.More() {
		name, err := p.key()
		if err != nil {
			return err
		}
		if err := p.node(name, depth); err != nil {
			return err
		}
	}
	return p.delim('}')
}

func (p *listingParser) delim(want json.Delim) error {
	t, err := p.dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("listing: got %v, want %v", t, want)
	}
	return nil
}

func (p *listingParser) key() (string, error) {
	t, err := p.dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("listing: got %v, want a key", t)
	}
	return s, nil
}

// value decodes the next value into v; a value of another type is left
// out, not an error.
func (p *listingParser) value(v any) error {
	var raw json.RawMessage
	if err := p.dec.Decode(&raw); err != nil {
		return err
	}
	_ = json.Unmarshal(raw, v)
	return nil
}

// skip reads past the next value, however nested, without keeping it.
func (p *listingParser) skip() error {
	depth := 0
	for {
		t, err := p.dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// Kind is how the listing shows an entry's type.
func (e Entry) Kind() string {
	switch e.Type {
	case "directory":
		return "dir"
	case "regular":
		if e.Executable {
			return "exec"
		}
		return "file"
	case "symlink":
		return "link"
	}
	return e.Type
}
