// Package client holds what runs on the machines that use a cache: the
// `cached use`, `cached push` and `cached collect` commands. It drives the
// Nix command-line tools and talks to the cache over HTTP like any other
// client; it imports none of the server's packages.
package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ConfFiles says where Nix reads its configuration from, for a user.
type ConfFiles struct {
	// System is the system-wide nix.conf ($NIX_CONF_DIR/nix.conf, or
	// /etc/nix/nix.conf): the one the nix-daemon and root read.
	System string
	// User is the user's own nix.conf: the first of $NIX_USER_CONF_FILES,
	// or $XDG_CONFIG_HOME/nix/nix.conf (~/.config/nix/nix.conf).
	User string
}

// FindConfFiles works out the configuration files as Nix does, from the
// environment given (os.Getenv when nil) and the user's home directory.
func FindConfFiles(getenv func(string) string, home string) ConfFiles {
	if getenv == nil {
		getenv = os.Getenv
	}
	var c ConfFiles
	dir := getenv("NIX_CONF_DIR")
	if dir == "" {
		dir = "/etc/nix"
	}
	c.System = filepath.Join(dir, "nix.conf")
	if files := getenv("NIX_USER_CONF_FILES"); files != "" {
		c.User = strings.Split(files, ":")[0]
		return c
	}
	cfg := getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	c.User = filepath.Join(cfg, "nix", "nix.conf")
	return c
}

// confLine is one line of nix.conf: a setting (key and value, the
// comment removed) or anything else, kept as it is.
type confLine struct {
	text  string
	key   string // "" for blank, comment and include lines
	value string
}

func parseConf(text string) []confLine {
	var lines []confLine
	for _, l := range strings.SplitAfter(text, "\n") {
		if l == "" {
			continue
		}
		body, _, _ := strings.Cut(strings.TrimRight(l, "\n"), "#")
		k, v, ok := strings.Cut(body, "=")
		cl := confLine{text: l}
		if ok && !strings.HasPrefix(strings.TrimSpace(k), "include") && !strings.HasPrefix(strings.TrimSpace(k), "!include") {
			cl.key, cl.value = strings.TrimSpace(k), strings.TrimSpace(v)
		}
		lines = append(lines, cl)
	}
	return lines
}

// Change is what MergeConf did to a setting.
type Change struct {
	Key   string
	Added []string // values added
}

// MergeConf adds values to a list setting of nix.conf text (key is the
// extra- form, "extra-substituters"): values already in the setting or
// its extra- form are left alone; the others are appended to the first
// line of the extra- form, or on a new line at the end. Every other line
// stays as it was, comments included.
func MergeConf(text, key string, values []string) (string, Change) {
	base := strings.TrimPrefix(key, "extra-")
	lines := parseConf(text)
	have := map[string]bool{}
	first := -1
	for i, l := range lines {
		if l.key == key || l.key == base {
			for _, v := range strings.Fields(l.value) {
				have[v] = true
			}
		}
		if l.key == key && first < 0 {
			first = i
		}
	}
	ch := Change{Key: key}
	for _, v := range values {
		if !have[v] {
			ch.Added = append(ch.Added, v)
			have[v] = true
		}
	}
	if len(ch.Added) == 0 {
		return text, ch
	}
	if first >= 0 {
		l := &lines[first]
		l.value = strings.TrimSpace(l.value + " " + strings.Join(ch.Added, " "))
		l.text = key + " = " + l.value + "\n"
	} else {
		if len(lines) > 0 && !strings.HasSuffix(lines[len(lines)-1].text, "\n") {
			lines[len(lines)-1].text += "\n"
		}
		lines = append(lines, confLine{text: key + " = " + strings.Join(ch.Added, " ") + "\n"})
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text)
	}
	return b.String(), ch
}

// ConfValue returns the value of a setting in nix.conf text: the last
// line that sets it, and whether one does.
func ConfValue(text, key string) (string, bool) {
	value, found := "", false
	for _, l := range parseConf(text) {
		if l.key == key {
			value, found = l.value, true
		}
	}
	return value, found
}

// readIfExists returns a file's contents, or "" if it does not exist.
func readIfExists(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced and renamed, so that Nix never reads half a file. An
// existing file keeps its mode; a new one gets mode.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := errors.Join(f.Chmod(mode), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}
