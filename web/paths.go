package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storepath"
)

// PageSize is how many paths a page of search results lists.
const PageSize = 100

// maxCursorName bounds the name in the after cursor of the search.
const maxCursorName = 1024

// pathRow is one path of a list.
type pathRow struct {
	catalog.Path
	Name string // the store path's name
}

// pathsBody is the data of the search page.
type pathsBody struct {
	Query string
	First bool // this is the first page
	Rows  []pathRow
	Next  string // the address of the next page, "" on the last
	Start string // the address of the first page
}

// Paths lists the published paths whose name contains the query q
// (ignoring case), PageSize at a time, ordered by name: GET
// Prefix/paths?q=hello&after=<base name of the last path shown>. The error
// returned is for the request log (the page was answered already).
func (u *UI) Paths(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query, after := strings.TrimSpace(q.Get("q")), q.Get("after")
	return u.page(w, r, func() error {
		if len(query) > storepath.MaxNameLen {
			return badRequest("the query is longer than any store path name (%d characters)", storepath.MaxNameLen)
		}
		// The cursor is a base name that came from the catalog: its hash
		// part must be one, its name is only bounded.
		if name, hash, ok := catalog.SearchCursor(after); !ok || len(name) > maxCursorName ||
			(after != "" && storepath.ValidateHashPart(hash) != nil) {
			return badRequest("after is not the base name of a store path")
		}
		var paths []catalog.Path
		err := u.heavy(r.Context(), func() error {
			var err error
			paths, err = u.cat.SearchPaths(r.Context(), query, after, PageSize+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("web: search: %w", err)
		}
		body := pathsBody{Query: query, First: after == "", Start: pagesURL(query, "")}
		if len(paths) > PageSize {
			paths = paths[:PageSize]
			last := paths[len(paths)-1]
			body.Next = pagesURL(query, last.HashPart+"-"+catalog.PathName(last))
		}
		for _, p := range paths {
			body.Rows = append(body.Rows, pathRow{Path: p, Name: catalog.PathName(p)})
		}
		title := "Paths"
		if query != "" {
			title = "Paths matching “" + query + "”"
		}
		return u.render(w, r, http.StatusOK, pathsTmpl, view{Title: title + " · cached", Nav: "paths", Query: query, Body: body})
	})
}

// pagesURL is the address of a page of search results.
func pagesURL(query, after string) string {
	v := url.Values{}
	if query != "" {
		v.Set("q", query)
	}
	if after != "" {
		v.Set("after", after)
	}
	if len(v) == 0 {
		return Prefix + "/paths"
	}
	return Prefix + "/paths?" + v.Encode()
}
