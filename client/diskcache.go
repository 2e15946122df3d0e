package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/mattn/go-sqlite3" // Nix's narinfo cache is SQLite
)

// Nix keeps what it learnt of binary caches in a SQLite file of its own
// (the narinfo disk cache): every narinfo it fetched or uploaded, for 30
// days, and every miss, for narinfo-cache-negative-ttl (an hour). Two
// entries defeat a push: the narinfo `nix copy --to` uploaded (without
// the cache's signature, so substitution refuses it as unsigned), and the
// miss recorded when Nix asked the cache before building (so it does not
// ask again and rebuilds). Forgetting a path's entries for the cache makes
// Nix ask the cache again.

// DiskCacheFiles returns the narinfo cache files Nix (2.8: -v6, 2.19 and
// later: -v7) would use for this user's environment, those that exist.
func DiskCacheFiles(getenv func(string) string, home string) []string {
	if getenv == nil {
		getenv = os.Getenv
	}
	var dirs []string
	if d := getenv("NIX_CACHE_HOME"); d != "" {
		dirs = append(dirs, d)
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		dirs = append(dirs, filepath.Join(d, "nix"))
	} else {
		dirs = append(dirs, filepath.Join(home, ".cache", "nix"))
	}
	var files []string
	for _, d := range dirs {
		for _, v := range []string{"binary-cache-v6.sqlite", "binary-cache-v7.sqlite"} {
			if _, err := os.Stat(filepath.Join(d, v)); err == nil {
				files = append(files, filepath.Join(d, v))
			}
		}
	}
	return files
}

// sameCache tells whether two cache URLs name the same cache: scheme,
// host, port and path alike, credentials and parameters aside.
func sameCache(a, b string) bool {
	norm := func(s string) string {
		u, err := url.Parse(s)
		if err != nil {
			return s
		}
		return strings.ToLower(u.Scheme+"://"+u.Host) + strings.TrimRight(u.Path, "/")
	}
	return norm(a) == norm(b)
}

// ForgetPaths removes what the narinfo cache file at path records about
// the paths (by hash part) in the cache at cacheURL, present or missing.
// It returns how many entries went.
func ForgetPaths(ctx context.Context, path, cacheURL string, hashes []string) (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, url FROM BinaryCaches`)
	if err != nil {
		return 0, fmt.Errorf("narinfo cache %s: %w", path, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var u string
		if err := rows.Scan(&id, &u); err != nil {
			rows.Close()
			return 0, fmt.Errorf("narinfo cache %s: %w", path, err)
		}
		if sameCache(u, cacheURL) {
			ids = append(ids, id)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("narinfo cache %s: %w", path, err)
	}
	var removed int64
	for _, id := range ids {
		for start := 0; start < len(hashes); start += 500 {
			batch := hashes[start:min(start+500, len(hashes))]
			args := []any{id}
			for _, h := range batch {
				args = append(args, h)
			}
			res, err := db.ExecContext(ctx, `DELETE FROM NARs WHERE cache = ? AND hashPart IN (?`+
				strings.Repeat(",?", len(batch)-1)+`)`, args...)
			if err != nil {
				return removed, fmt.Errorf("narinfo cache %s: %w", path, err)
			}
			n, _ := res.RowsAffected()
			removed += n
		}
	}
	return removed, nil
}
