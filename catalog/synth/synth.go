// Package synth makes synthetic published paths for benchmarks and load
// tests at sizes no real push could reach quickly, and loads them into a
// SQLite catalog (a million paths in well under a minute).
//
// The rows look like a long-running cache's: every path has its own NAR,
// references up to three earlier paths, and a plausible narinfo. No blobs
// are written.
package synth

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver
)

// Options says what Fill creates.
type Options struct {
	Paths int        // how many paths
	Rand  *rand.Rand // the source of hashes and references
	// Now is when every path was created and last used, or, with Spread,
	// the end of the interval their times are spread over. Zero means the
	// Unix epoch.
	Now time.Time
	// Spread spreads creation and last-use times uniformly over the
	// interval [Now-Spread, Now], as in a cache that has run that long.
	Spread time.Duration
}

// Result names what Fill created, in creation order.
type Result struct {
	Hashes []string // hash parts
	Keys   []string // NAR keys
}

const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// Hash returns a random nix32 string of n characters.
func Hash(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// NarInfo renders a narinfo of typical size for the path with hash part
// h, stored under narKey, referencing refs.
func NarInfo(h, narKey string, refs []string) string {
	named := make([]string, len(refs))
	for i, r := range refs {
		named[i] = r + "-synthetic"
	}
	return fmt.Sprintf("StorePath: /nix/store/%s-synthetic\nURL: %s\nCompression: zstd\n"+
		"FileHash: sha256:%s\nFileSize: 12345\nNarHash: sha256:%s\nNarSize: 45678\n"+
		"References: %s\nDeriver: %s-synthetic.drv\n"+
		"Sig: cache.example.org-1:%s==\n",
		h, narKey, strings.Repeat("1", 52), strings.Repeat("0", 52),
		strings.Join(named, " "), h, strings.Repeat("A", 86))
}

// Row is one synthetic published path and its NAR.
type Row struct {
	Hash     string    // the hash part
	Key      string    // the NAR's key
	FileHash string    // "sha256:…" of the NAR file, also used as NarHash
	Refs     []string  // hash parts of earlier rows
	At       time.Time // created and last used
	NarInfo  string
}

// Generate calls fn with o.Paths rows, in order; it stops at fn's first
// error and returns it.
func Generate(o Options, fn func(Row) error) error {
	if o.Now.IsZero() {
		o.Now = time.UnixMilli(0)
	}
	r := o.Rand
	hashes := make([]string, 0, o.Paths)
	for i := range o.Paths {
		row := Row{Hash: Hash(r, 32), At: o.Now}
		fh := Hash(r, 52)
		row.Key, row.FileHash = "nar/"+fh+".nar.zst", "sha256:"+fh
		if o.Spread > 0 {
			row.At = row.At.Add(-time.Duration(r.Int64N(int64(o.Spread))))
		}
		for j := 0; j < 3 && i > 0; j++ {
			ref := hashes[r.IntN(i)]
			if !slices.Contains(row.Refs, ref) {
				row.Refs = append(row.Refs, ref)
			}
		}
		row.NarInfo = NarInfo(row.Hash, row.Key, row.Refs)
		hashes = append(hashes, row.Hash)
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// FillSQLite adds o.Paths rows to the SQLite catalog at dbPath, whose
// schema sqlite.Open must have created, in one transaction, then
// checkpoints the write-ahead log so that the pages live in the database
// file, as a server's small commits leave them.
func FillSQLite(ctx context.Context, dbPath string, o Options) (Result, error) {
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=10000")
	if err != nil {
		return Result{}, fmt.Errorf("synth: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var res Result
	if err := fillSQLite(ctx, db, o, &res); err != nil {
		return Result{}, fmt.Errorf("synth: filling %s: %w", dbPath, err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return Result{}, fmt.Errorf("synth: checkpoint: %w", err)
	}
	return res, nil
}

func fillSQLite(ctx context.Context, db *sql.DB, o Options, res *Result) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insNAR, err := tx.PrepareContext(ctx, `INSERT INTO nars (key, compression, file_hash,
		file_size, nar_hash, nar_size, created_at) VALUES (?, 'zstd', ?, 12345, ?, 45678, ?) RETURNING id`)
	if err != nil {
		return err
	}
	insPath, err := tx.PrepareContext(ctx, `INSERT INTO paths (hash_part, store_path, nar_id,
		nar_hash, nar_size, deriver, narinfo, created_at, last_used) VALUES (?, ?, ?, ?, 45678, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insRef, err := tx.PrepareContext(ctx, `INSERT INTO refs (referrer, reference) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	err = Generate(o, func(row Row) error {
		ms := row.At.UnixMilli()
		var id int64
		if err := insNAR.QueryRowContext(ctx, row.Key, row.FileHash, row.FileHash, ms).Scan(&id); err != nil {
			return err
		}
		if _, err := insPath.ExecContext(ctx, row.Hash, "/nix/store/"+row.Hash+"-synthetic", id,
			row.FileHash, row.Hash+"-synthetic.drv", row.NarInfo, ms, ms); err != nil {
			return err
		}
		for _, ref := range row.Refs {
			if _, err := insRef.ExecContext(ctx, row.Hash, ref); err != nil {
				return err
			}
		}
		res.Hashes = append(res.Hashes, row.Hash)
		res.Keys = append(res.Keys, row.Key)
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}
