package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Push is one `cached push`: closures to copy into a cache with
// `nix copy --to`.
type Push struct {
	Cache *Cache
	Nix   *Nix
	// Params are the store URL parameters of the copy ("compression=zstd").
	Params string
	// DiskCaches are the narinfo cache files in which to forget what Nix
	// knew of the pushed paths in this cache (DiskCacheFiles).
	DiskCaches []string
	// Options are Nix settings for the copy, NAME VALUE pairs
	// ("connect-timeout", "5").
	Options []string
	// Out gets progress and the summary; TTY redraws one progress line.
	Out io.Writer
	TTY bool
}

// PushResult says what a push did.
type PushResult struct {
	Paths, Copied      int   // paths in the closures; of those, copied now
	Bytes, CopiedBytes int64 // their NAR bytes
}

// Run pushes the closures of paths and returns what it did. When the
// cache's client API answers (a push token), it first asks which paths
// the cache lacks, for the totals. After the copy, it removes what Nix's
// narinfo cache knew of these paths in this cache: the unsigned narinfos
// Nix would otherwise keep, and misses it recorded before a build.
func (p *Push) Run(ctx context.Context, paths []string) (PushResult, error) {
	var res PushResult
	infos, err := p.Nix.PathInfos(ctx, true, paths)
	if err != nil {
		return res, err
	}
	size := make(map[string]int64, len(infos))
	hashes := make([]string, 0, len(infos))
	for _, in := range infos {
		size[in.Path] = in.NarSize
		res.Bytes += in.NarSize
		hashes = append(hashes, hashPart(in.Path))
	}
	res.Paths = len(infos)
	todo, todoBytes := res.Paths, res.Bytes
	if held, err := p.Cache.Lookup(ctx, hashes); err == nil {
		todo, todoBytes = 0, 0
		for _, in := range infos {
			if held[hashPart(in.Path)] == nil {
				todo++
				todoBytes += in.NarSize
			}
		}
	} else if !errors.Is(err, ErrHTTP) {
		return res, err
	}
	p.progress(&res, todo, todoBytes, "")

	if err := p.copy(ctx, paths, func(path string) {
		res.Copied++
		res.CopiedBytes += size[path]
		p.progress(&res, todo, todoBytes, path)
	}); err != nil {
		return res, err
	}
	for _, f := range p.DiskCaches {
		if _, err := ForgetPaths(ctx, f, p.Cache.URL, hashes); err != nil {
			return res, err
		}
	}
	if p.TTY {
		fmt.Fprintln(p.Out)
	}
	fmt.Fprintf(p.Out, "pushed %d of %d paths (%s of %s) to %s; the cache held the rest\n",
		res.Copied, res.Paths, human(res.CopiedBytes), human(res.Bytes), p.Cache.Redacted())
	return res, nil
}

// progress shows how far the push is: one line redrawn on a terminal, a
// line per copied path otherwise.
func (p *Push) progress(res *PushResult, todo int, todoBytes int64, path string) {
	if p.TTY {
		fmt.Fprintf(p.Out, "\r\x1b[Kpushing: %d/%d paths, %s/%s", res.Copied, todo, human(res.CopiedBytes), human(todoBytes))
		return
	}
	if path != "" {
		fmt.Fprintf(p.Out, "pushed %s (%d/%d)\n", path, res.Copied, todo)
	}
}

// copy runs `nix copy --to` with a narinfo cache of its own (so that the
// narinfos it uploads, which lack the cache's signature, never reach the
// user's), calling copied for every path copied. Credentials in the URL
// are dropped: pushing takes the push token from the cache's Token, or
// else from the netrc file Nix reads.
func (p *Push) copy(ctx context.Context, paths []string, copied func(string)) error {
	tmp, err := os.MkdirTemp("", "cached-push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	to := p.Cache.Bare()
	if p.Params != "" {
		to += "?" + p.Params
	}
	nix := *p.Nix
	nix.Env = append(append([]string{}, nix.Env...), "XDG_CACHE_HOME="+tmp, "NIX_CACHE_HOME="+filepath.Join(tmp, "nix"))
	args := []string{"copy", "--log-format", "internal-json"}
	for i := 0; i+1 < len(p.Options); i += 2 {
		args = append(args, "--option", p.Options[i], p.Options[i+1])
	}
	if p.Cache.Token != "" {
		// The token given to cached reaches Nix through a netrc file of
		// this copy's own (only the cache's host is asked).
		netrc, _ := MergeNetrc("", p.Cache.Host(), p.Cache.Token)
		file := filepath.Join(tmp, "netrc")
		if err := os.WriteFile(file, []byte(netrc), 0o600); err != nil {
			return err
		}
		args = append(args, "--option", "netrc-file", file)
	}
	cmd := nix.command(ctx, "nix", append(append(args, "--to", to), paths...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nix copy: %w", err)
	}
	msgs := readCopyLog(stderr, copied)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("nix copy --to %s: %w\n%s", to, err, strings.Join(msgs, "\n"))
	}
	return nil
}

// readCopyLog follows Nix's internal-json log: it calls copied when a
// path's copy ends, and returns the messages Nix printed (errors among
// them).
func readCopyLog(r io.Reader, copied func(string)) []string {
	var msgs []string
	copying := map[uint64]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "@nix ")
		if !ok {
			msgs = append(msgs, sc.Text())
			continue
		}
		var ev struct {
			Action string `json:"action"`
			ID     uint64 `json:"id"`
			Type   int    `json:"type"`
			Fields []any  `json:"fields"`
			Msg    string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		switch {
		case ev.Action == "start" && ev.Type == actCopyPath && len(ev.Fields) > 0:
			if path, ok := ev.Fields[0].(string); ok {
				copying[ev.ID] = path
			}
		case ev.Action == "stop":
			if path, ok := copying[ev.ID]; ok {
				delete(copying, ev.ID)
				copied(path)
			}
		case ev.Action == "msg" && ev.Msg != "":
			msgs = append(msgs, ev.Msg)
		}
	}
	return msgs
}

// actCopyPath is Nix's activity type for copying one path.
const actCopyPath = 100

// hashPart returns the hash part of a store path.
func hashPart(storePath string) string {
	base := filepath.Base(storePath)
	if len(base) < 32 {
		return base
	}
	return base[:32]
}

// human formats a byte count.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
