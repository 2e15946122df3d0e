package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// Index is what the HTML form of GET / shows besides the summary: how to
// use the cache, for the URL the client used (the server works it out).
type Index struct {
	URL         string // scheme://host[:port] as the client reached the cache
	Machine     string // the netrc machine name
	UnknownHost bool   // the Host header was unusable: URL and Machine hold a placeholder
	Keys        string // every public key, separated by spaces; "" when there is none
	Private     bool   // reads need a token
	StorePath   string // an example store path for nix copy
	// Browse says the visitor may read the cache (reads are public, or
	// the request carries a read token): the page then shows a summary of
	// the catalog and the search box; otherwise only links to the pages,
	// which ask for a token.
	Browse bool
}

// summary is the catalog's Stats as the front page shows them.
type summary struct {
	catalog.Stats
	Used []usedBucket
	// Signing is the state of re-signing after a key change (key
	// rollover); nil before the first.
	Signing *catalog.ResignState
}

// usedBucket counts the paths used within Label.
type usedBucket struct {
	Label string
	Paths int
	Bytes int64
}

// usedAges are the windows of last use the summary counts.
var usedAges = []struct {
	age   time.Duration
	label string
}{{24 * time.Hour, "day"}, {7 * 24 * time.Hour, "7 days"}, {30 * 24 * time.Hour, "30 days"}}

// indexBody is the data of the front page.
type indexBody struct {
	Index
	Summary *summary // nil when the catalog could not be read
}

// ServeIndex writes the HTML form of GET /. A catalog that cannot be read
// only costs the summary: the instructions are always there. The error
// returned is for the request log (the page was answered already).
func (u *UI) ServeIndex(w http.ResponseWriter, r *http.Request, p Index) error {
	body := indexBody{Index: p}
	if p.Browse {
		s, err := u.summary(r)
		if err != nil {
			u.log.WarnContext(r.Context(), "web: no summary for the front page", "error", err)
		} else {
			body.Summary = s
		}
	}
	return u.page(w, r, func() error {
		return u.render(w, r, http.StatusOK, indexTmpl, view{Title: "cached: a Nix binary cache", Body: body})
	})
}

// summary is the catalog's Stats with the usedAges buckets added up.
func (u *UI) summary(r *http.Request) (*summary, error) {
	st, _, err := u.stats(r.Context())
	if err != nil {
		return nil, err
	}
	s := &summary{Stats: st}
	var paths int
	var bytes int64
	for i, a := range usedAges {
		if i >= len(st.ByLastUse) {
			break
		}
		// Buckets are disjoint: "within 7 days" adds up the first two.
		paths += st.ByLastUse[i].Paths
		bytes += st.ByLastUse[i].Bytes
		s.Used = append(s.Used, usedBucket{Label: a.label, Paths: paths, Bytes: bytes})
	}
	rs, err := u.cat.ResignState(r.Context())
	switch {
	case err == nil:
		s.Signing = &rs
	case !errors.Is(err, catalog.ErrNotFound):
		return nil, err
	}
	return s, nil
}
