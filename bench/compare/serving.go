package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// measureServing loads both servers with wrk, alternating between them
// so that drift in the machine's speed touches both alike: narinfo hits
// and misses at every connection count, then the largest NAR of the
// closure over 1 and 16 connections.
func (b *bench) measureServing(ctx context.Context, r *results, ngx, cch *server, closure []string, d time.Duration) error {
	hits := make([]string, len(closure))
	for i, p := range closure {
		hits[i] = "/" + filepath.Base(p)[:32] + ".narinfo"
	}
	hitFile, err := b.writeList("hits", hits)
	if err != nil {
		return err
	}
	r.NarInfo = map[string]map[int]compared{"hit": {}, "miss": {}}
	for _, kind := range []string{"hit", "miss"} {
		file := hitFile
		if kind == "miss" {
			file = b.missFile
		}
		for _, conns := range b.conns {
			pair, err := b.alternate(ctx, ngx, cch, func(s *server) (load, error) {
				b.logf("narinfo %ss over %d connections: %s", kind, conns, s.name)
				l, err := b.wrk(ctx, s.URL, conns, d, file)
				if err != nil {
					return l, err
				}
				want := int64(0) // every hit answers 200, every miss 404
				if kind == "miss" {
					want = l.Requests
				}
				if l.NotOK != want || l.Errors > 0 {
					return l, fmt.Errorf("narinfo %ss from %s: %d of %d answers not OK (want %d), %d errors",
						kind, s.name, l.NotOK, l.Requests, want, l.Errors)
				}
				return l, nil
			})
			if err != nil {
				return err
			}
			r.NarInfo[kind][conns] = pair
		}
	}

	// The largest NAR, by the static cache's file size.
	var best string
	var bestSize int64
	for _, p := range closure {
		st, body, err := fetch(ctx, ngx.URL+"/"+filepath.Base(p)[:32]+".narinfo")
		if err != nil || st != http.StatusOK {
			return fmt.Errorf("narinfo of %s from nginx: %d %v", p, st, err)
		}
		var size int64
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "FileSize: "); ok {
				fmt.Sscan(v, &size)
			}
		}
		if size > bestSize {
			best, bestSize = filepath.Base(p)[:32], size
		}
	}
	r.NARBytes = bestSize
	r.NAR = map[int]compared{}
	for _, conns := range []int{1, 16} {
		pair, err := b.alternate(ctx, ngx, cch, func(s *server) (load, error) {
			url, err := narURL(ctx, s.URL, best)
			if err != nil {
				return load{}, err
			}
			file, err := b.writeList("nar-"+s.name, []string{strings.TrimPrefix(url, s.URL)})
			if err != nil {
				return load{}, err
			}
			b.logf("NAR downloads over %d connections: %s", conns, s.name)
			l, err := b.wrk(ctx, s.URL, conns, d, file)
			if err == nil && (l.NotOK > 0 || l.Errors > 0) {
				err = fmt.Errorf("NAR downloads from %s: %+v", s.name, l)
			}
			return l, err
		})
		if err != nil {
			return err
		}
		r.NAR[conns] = pair
	}
	return nil
}

// compared is one load measured on both servers b.repeat times.
type compared struct {
	Median [2]load      // each server's run with the median throughput: {nginx, cached}
	Ratios []float64    // cached's throughput over nginx's, run after run
	Runs   [2][]float64 // each server's throughput, run after run
}

// alternate runs measure b.repeat times on each server, nginx then cached
// then nginx again…, so that drift in a shared machine's speed touches
// both alike. Each cached run is compared with the nginx run before it.
func (b *bench) alternate(ctx context.Context, ngx, cch *server, measure func(*server) (load, error)) (compared, error) {
	var runs [2][]load
	var c compared
	for range b.repeat {
		for i, s := range []*server{ngx, cch} {
			l, err := measure(s)
			if err != nil {
				return compared{}, err
			}
			runs[i] = append(runs[i], l)
			c.Runs[i] = append(c.Runs[i], l.RPS())
		}
		n := len(runs[0]) - 1
		c.Ratios = append(c.Ratios, runs[1][n].RPS()/runs[0][n].RPS())
	}
	for i, rs := range runs {
		slices.SortFunc(rs, func(a, b load) int { return cmp.Compare(a.RPS(), b.RPS()) })
		c.Median[i] = rs[len(rs)/2]
	}
	return c, nil
}

// fetch GETs url and returns the status and body.
func fetch(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// closureSize sums the NAR files of a static cache.
func closureSize(static string) (int64, error) {
	var total int64
	err := filepath.WalkDir(filepath.Join(static, "nar"), func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		total += fi.Size()
		return err
	})
	return total, err
}

// describeMachine says what the figures were measured on.
func describeMachine(ctx context.Context) string {
	first := func(name string, args ...string) string {
		// wrk -v exits 1 after printing its version.
		out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if len(out) == 0 {
			return name + ": unknown"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(data), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s; %d cores (%s), %s RAM; Linux %s; %s; %s; nginx %s; %s",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), model, mem, first("uname", "-r"),
		runtime.Version(), first("nix", "--version"), strings.TrimPrefix(first("nginx", "-v"), "nginx version: nginx/"),
		first("wrk", "-v"))
}
