package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Use is one `cached use`: configure Nix on this machine to substitute
// from a cache (and push to it, with a token).
type Use struct {
	Cache *Cache
	// Conf is the nix.conf to write: the system one for root, the user's
	// otherwise, or the one the user named.
	Conf string
	// Netrc is the netrc file for Token: "" for the one Conf names with
	// netrc-file, or else the file "netrc" next to Conf (named in Conf
	// unless it is DefaultNetrc, Nix's default: $NIX_CONF_DIR/netrc).
	Netrc, DefaultNetrc string
	// Token, when set, goes into the netrc file as the password for the
	// cache's host: a push token lets `nix copy --to` and `cached push`
	// in; a read token reads a private cache.
	Token string
	// State is the client state file that records the cache as the
	// default of `cached push` and `cached collect` (StateFile).
	State string
	// StoreDir is the local store's directory, to compare with the
	// cache's ("" skips the check).
	StoreDir string
	// Keys, when set, are the keys to trust (NAME:BASE64), given rather
	// than read from the cache: each must be one the cache serves.
	Keys []string
	// Hook, when set, is where to write a post-build-hook script that
	// runs the cached binary HookBin to push every build to the cache;
	// nix.conf's post-build-hook is set to it.
	Hook, HookBin string
	DryRun        bool
	Out           io.Writer
	// Notes are told at the end: what else is needed that Use cannot do.
	Notes []string
}

// Run reads the cache's nix-cache-info and keys and merges them into the
// nix.conf (and the token into the netrc file); with DryRun, it only says
// what it would change.
func (u *Use) Run(ctx context.Context) error {
	info, err := u.Cache.Info(ctx)
	if err != nil {
		return err
	}
	if u.StoreDir != "" && info.StoreDir != u.StoreDir {
		return fmt.Errorf("%s serves store %s, but this Nix uses %s: Nix would ignore it", u.Cache.Redacted(), info.StoreDir, u.StoreDir)
	}
	keys, err := u.Cache.PublicKeys(ctx)
	if err != nil {
		return err
	}
	conf, err := readIfExists(u.Conf)
	if err != nil {
		return err
	}
	keyStrings := make([]string, len(keys))
	for i, k := range keys {
		keyStrings[i] = k.String()
	}
	for _, k := range u.Keys {
		if !slices.Contains(keyStrings, k) {
			return fmt.Errorf("%s does not sign with the key %s (it serves %s)", u.Cache.Redacted(), k, strings.Join(keyStrings, " "))
		}
	}
	if len(u.Keys) > 0 {
		keyStrings = u.Keys
	}
	merged, subs := MergeConf(conf, "extra-substituters", []string{u.Cache.URL})
	merged, trusted := MergeConf(merged, "extra-trusted-public-keys", keyStrings)
	var script, oldScript string
	setHook := false
	if u.Hook != "" {
		v, _ := ConfValue(merged, "post-build-hook")
		setHook = v != u.Hook
		if v != "" && v != u.Hook {
			return fmt.Errorf("%s already runs the post-build-hook %s, and Nix runs only one: make that hook run `%s post-build-hook --to %s` too, or remove it",
				u.Conf, v, u.HookBin, u.Cache.Redacted())
		}
		merged = setConf(merged, "post-build-hook", u.Hook)
		script = HookScript(u.HookBin, u.Cache.Bare())
		if oldScript, err = readIfExists(u.Hook); err != nil {
			return err
		}
	}
	var netrcFile, netrc string
	netrcChanged := false
	if u.Token != "" {
		netrcFile = u.Netrc
		if netrcFile == "" {
			if v, ok := ConfValue(merged, "netrc-file"); ok && v != "" {
				netrcFile = v
			} else {
				netrcFile = filepath.Join(filepath.Dir(u.Conf), "netrc")
				if netrcFile != u.DefaultNetrc {
					// Not Nix's default netrc: name it in nix.conf.
					merged = setConf(merged, "netrc-file", netrcFile)
				}
			}
		}
		old, err := readIfExists(netrcFile)
		if err != nil {
			return err
		}
		netrc, netrcChanged = MergeNetrc(old, u.Cache.Host(), u.Token)
	}

	verb := "added"
	if u.DryRun {
		verb = "would add"
	}
	for _, ch := range []Change{subs, trusted} {
		if len(ch.Added) > 0 {
			fmt.Fprintf(u.Out, "%s: %s %s = %s\n", u.Conf, verb, ch.Key, strings.Join(ch.Added, " "))
		}
	}
	if setHook {
		fmt.Fprintf(u.Out, "%s: %s post-build-hook = %s\n", u.Conf, strings.Replace(verb, "add", "set", 1), u.Hook)
	}
	if merged == conf {
		fmt.Fprintf(u.Out, "%s: already uses %s with its keys\n", u.Conf, u.Cache.Redacted())
	}
	if netrcChanged {
		fmt.Fprintf(u.Out, "%s: %s the token for %s (mode 0600)\n", netrcFile, strings.Replace(verb, "add", "set", 1), u.Cache.Host())
	}
	if script != oldScript {
		fmt.Fprintf(u.Out, "%s: %s a post-build-hook that pushes every build to %s\n", u.Hook, strings.Replace(verb, "add", "write", 1), u.Cache.Redacted())
	}
	if u.DryRun {
		return nil
	}
	if merged != conf {
		if err := writeAtomic(u.Conf, []byte(merged), 0o644); err != nil {
			return err
		}
	}
	if netrcChanged {
		if err := writeAtomic(netrcFile, []byte(netrc), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(netrcFile, 0o600); err != nil {
			return err
		}
	}
	if script != oldScript {
		if err := writeAtomic(u.Hook, []byte(script), 0o755); err != nil {
			return err
		}
	}
	if u.State != "" {
		if err := writeAtomic(u.State, []byte("url = "+u.Cache.URL+"\n"), 0o600); err != nil {
			return err
		}
	}
	for _, n := range u.Notes {
		fmt.Fprintln(u.Out, "note: "+n)
	}
	return nil
}

// setConf sets a single-valued setting in nix.conf text: its last line
// is replaced, or a line is added.
func setConf(text, key, value string) string {
	lines := parseConf(text)
	last := -1
	for i, l := range lines {
		if l.key == key {
			last = i
		}
	}
	line := key + " = " + value + "\n"
	if last < 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		return text + line
	}
	var b strings.Builder
	for i, l := range lines {
		if i == last {
			b.WriteString(line)
		} else {
			b.WriteString(l.text)
		}
	}
	return b.String()
}

// StateFile is where the client records the cache `cached use` set up:
// $XDG_CONFIG_HOME/cached/client.conf (~/.config/cached/client.conf); ""
// (nothing recorded) when neither XDG_CONFIG_HOME nor the home directory
// is known, rather than a file relative to the working directory.
func StateFile(getenv func(string) string, home string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" && home == "" {
		return ""
	}
	if dir == "" {
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "cached", "client.conf")
}

// DefaultURL returns the cache recorded in the state file, or "".
func DefaultURL(state string) (string, error) {
	if state == "" {
		return "", nil
	}
	text, err := readIfExists(state)
	if err != nil {
		return "", err
	}
	v, _ := ConfValue(text, "url")
	return v, nil
}
