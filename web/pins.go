package web

import (
	"fmt"
	"net/http"

	"github.com/nix-cached/cached/catalog"
)

// pinRow is a pin as the pins page lists it.
type pinRow struct {
	catalog.Pin
	Expired bool
}

// Pins lists every pin: GET Prefix/pins. The error returned is for the
// request log (the page was answered already).
func (u *UI) Pins(w http.ResponseWriter, r *http.Request) error {
	return u.page(w, r, func() error {
		pins, err := u.cat.Pins(r.Context())
		if err != nil {
			return fmt.Errorf("web: pins: %w", err)
		}
		now := u.now()
		rows := make([]pinRow, 0, len(pins))
		for _, p := range pins {
			rows = append(rows, pinRow{Pin: p, Expired: !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(now)})
		}
		return u.render(w, r, http.StatusOK, pinsTmpl, view{Title: "Pins · cached", Nav: "pins", Body: rows})
	})
}
