package main

import (
	"flag"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"365d": 365 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1.5d": 36 * time.Hour, "0": 0,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "tomorrow", "5x"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) succeeded", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1000": 1000, "50G": 50 << 30, "50GiB": 50 << 30, "500MiB": 500 << 20, "1.5T": 3 << 39, "2K": 2048, "": 0, "0": 0,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"G", "-5G", "5X", "five"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	fs := flag.NewFlagSet("pin add", flag.ContinueOnError)
	keep := fs.Int("keep", 0, "")
	if err := parseFlags(fs, []string{"flox-cli", "/nix/store/x-y", "--keep", "3"}); err != nil {
		t.Fatal(err)
	}
	if *keep != 3 || fs.NArg() != 2 || fs.Arg(0) != "flox-cli" || fs.Arg(1) != "/nix/store/x-y" {
		t.Fatalf("keep %d, args %q", *keep, fs.Args())
	}
}
