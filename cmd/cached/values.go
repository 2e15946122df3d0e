package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nix-cached/cached/storepath"
)

// durationFlag is a duration that also takes days and weeks: "365d", "2w",
// or anything time.ParseDuration takes ("36h", "90m").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0"
	}
	if *f.d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", *f.d/(24*time.Hour))
	}
	s := f.d.String() // "10m0s", "1h30m0s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (f durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (e.g. 365d, 2w, 36h)", s)
	}
	return d, nil
}

// sizeFlag is a byte count: "500000", "50G", "50GiB", "1.5T" (powers of
// 1024 either way); "0" or "" means none.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil || *f.n == 0 {
		return ""
	}
	return formatSize(*f.n)
}

// formatSize writes n as parseSize reads it: in the largest binary unit
// that divides it (32MiB, 64GiB), or in bytes.
func formatSize(n int64) string {
	for i := 4; i >= 0; i-- {
		unit := int64(1) << (10 * (i + 1))
		if n%unit == 0 {
			return strconv.FormatInt(n/unit, 10) + string("KMGTP"[i]) + "iB"
		}
	}
	return strconv.FormatInt(n, 10)
}

func (f sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	if t == "" {
		return 0, nil
	}
	mult := int64(1)
	if i := strings.IndexAny(t, "KMGTP"); i == len(t)-1 {
		mult = int64(1) << (10 * (1 + strings.IndexByte("KMGTP", t[i])))
		t = t[:i]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q (e.g. 50G, 500MiB, 1.5T)", s)
	}
	return int64(v * float64(mult)), nil
}

// hashPartOf returns the hash part of a store path, a basename
// ("<hash>-<name>") or a bare hash part.
func hashPartOf(arg string) (string, error) {
	base := arg[strings.LastIndexByte(arg, '/')+1:]
	if err := storepath.ValidateHashPart(base); err == nil {
		return base, nil
	}
	p, err := storepath.ParseBase(base)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a store path", errUsage, arg)
	}
	return p.Hash, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
