package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// PutRealisation stores a realisation under its id, replacing any previous
// one, with the hash part of its outPath so that it goes with that path.
// The body is stored as given, even when it names no outPath.
func (c *Catalog) PutRealisation(ctx context.Context, id string, body []byte) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO realisations (id, body, created_at, out_hash)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET body = excluded.body, created_at = excluded.created_at,
				out_hash = excluded.out_hash`,
			id, body, time.Now().UnixMilli(), outHash(body))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: put realisation %s: %w", id, err)
	}
	return nil
}

// outHash is the hash part realisations are indexed by (see
// catalog.RealisationOutHash).
var outHash = catalog.RealisationOutHash

// Realisation returns a stored realisation.
func (c *Catalog) Realisation(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := c.reader.QueryRowContext(ctx, `SELECT body FROM realisations WHERE id = ?`, id).Scan(&body)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: realisation %s: %w", id, notFound(err))
	}
	return body, nil
}

// CreateToken stores a token; a token with the same name, or the same
// secret, fails with catalog.ErrConflict.
func (c *Catalog) CreateToken(ctx context.Context, t catalog.Token) error {
	var inserted int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (name, hash, scope, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			t.Name, t.Hash, string(t.Scope), catalog.Millis(t.CreatedAt))
		if err != nil {
			return err
		}
		inserted, err = res.RowsAffected()
		return err
	})
	if err == nil && inserted == 0 {
		err = fmt.Errorf("%w: a token with this name or secret exists", catalog.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite catalog: create token %s: %w", t.Name, err)
	}
	return nil
}

// scanToken reads name, hash, scope and created_at.
func scanToken(row interface{ Scan(...any) error }) (catalog.Token, error) {
	var t catalog.Token
	var scope string
	var created int64
	err := row.Scan(&t.Name, &t.Hash, &scope, &created)
	t.Scope = catalog.Scope(scope)
	t.CreatedAt = catalog.FromMillis(created)
	return t, err
}

// TokenByHash finds a token by the SHA-256 of its secret.
func (c *Catalog) TokenByHash(ctx context.Context, hash []byte) (catalog.Token, error) {
	t, err := scanToken(c.reader.QueryRowContext(ctx,
		`SELECT name, hash, scope, created_at FROM tokens WHERE hash = ?`, hash))
	if err != nil {
		// The hash is a credential's digest: keep it out of messages.
		return catalog.Token{}, fmt.Errorf("sqlite catalog: token by hash: %w", notFound(err))
	}
	return t, nil
}

// Tokens lists all tokens, ordered by name.
func (c *Catalog) Tokens(ctx context.Context) ([]catalog.Token, error) {
	rows, err := c.reader.QueryContext(ctx,
		`SELECT name, hash, scope, created_at FROM tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: tokens: %w", err)
	}
	defer rows.Close()
	var ts []catalog.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite catalog: tokens: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: tokens: %w", err)
	}
	return ts, nil
}

// DeleteToken removes the token with this name.
func (c *Catalog) DeleteToken(ctx context.Context, name string) error {
	var deleted int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
		if err != nil {
			return err
		}
		deleted, err = res.RowsAffected()
		return err
	})
	if err == nil && deleted == 0 {
		err = catalog.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite catalog: delete token %s: %w", name, err)
	}
	return nil
}
