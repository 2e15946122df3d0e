package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nix-cached/cached/catalog"
)

// PutRealisation stores a realisation under its id, replacing any previous
// one, with the hash part of its outPath so that it goes with that path.
// The body is stored as given, even when it names no outPath.
func (c *Catalog) PutRealisation(ctx context.Context, id string, body []byte) error {
	err := c.write(ctx, func(t *txn) error {
		_, err := t.Exec(ctx, `INSERT INTO realisations (id, body, created_at, out_hash)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET body = excluded.body, created_at = excluded.created_at,
				out_hash = excluded.out_hash`,
			id, body, time.Now().UnixMilli(), outHash(body))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: put realisation %s: %w", id, err)
	}
	return nil
}

// outHash is the hash part realisations are indexed by (see
// catalog.RealisationOutHash).
var outHash = catalog.RealisationOutHash

// Realisation returns a stored realisation.
func (c *Catalog) Realisation(ctx context.Context, id string) ([]byte, error) {
	var body []byte
	err := c.query(ctx, func() error {
		return c.pool.QueryRow(ctx, `SELECT body FROM realisations WHERE id = $1`, id).Scan(&body)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: realisation %s: %w", id, notFound(err))
	}
	return body, nil
}

// CreateToken stores a token; a token with the same name, or the same
// secret, fails with catalog.ErrConflict.
func (c *Catalog) CreateToken(ctx context.Context, t catalog.Token) error {
	var inserted int64
	err := c.write(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tokens (name, hash, scope, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			t.Name, t.Hash, string(t.Scope), catalog.Millis(t.CreatedAt))
		inserted = tag.RowsAffected()
		return err
	})
	var pe *pgconn.PgError
	if (err == nil && inserted == 0) || (errors.As(err, &pe) && pe.Code == "23505") { // unique_violation
		err = fmt.Errorf("%w: a token with this name or secret exists", catalog.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres catalog: create token %s: %w", t.Name, err)
	}
	return nil
}

// scanToken reads name, hash, scope and created_at.
func scanToken(row pgx.Row) (catalog.Token, error) {
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
	var t catalog.Token
	err := c.query(ctx, func() error {
		var err error
		t, err = scanToken(c.pool.QueryRow(ctx,
			`SELECT name, hash, scope, created_at FROM tokens WHERE hash = $1`, hash))
		return err
	})
	if err != nil {
		// The hash is a credential's digest: keep it out of messages.
		return catalog.Token{}, fmt.Errorf("postgres catalog: token by hash: %w", notFound(err))
	}
	return t, nil
}

// Tokens lists all tokens, ordered by name.
func (c *Catalog) Tokens(ctx context.Context) ([]catalog.Token, error) {
	var ts []catalog.Token
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT name, hash, scope, created_at FROM tokens ORDER BY name`)
		if err != nil {
			return err
		}
		ts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Token, error) { return scanToken(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: tokens: %w", err)
	}
	return ts, nil
}

// DeleteToken removes the token with this name.
func (c *Catalog) DeleteToken(ctx context.Context, name string) error {
	var deleted int64
	err := c.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
		deleted = tag.RowsAffected()
		return err
	})
	if err == nil && deleted == 0 {
		err = catalog.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres catalog: delete token %s: %w", name, err)
	}
	return nil
}
