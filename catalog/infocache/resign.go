package infocache

import "context"

// ReplaceNarInfo replaces a narinfo (re-signing) and forgets what was
// known of the path.
func (c *Catalog) ReplaceNarInfo(ctx context.Context, hashPart, old, new string) error {
	err := c.Catalog.ReplaceNarInfo(ctx, hashPart, old, new)
	if err == nil {
		c.forget([]string{hashPart})
	}
	return err
}
