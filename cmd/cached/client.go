package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nix-cached/cached/client"
	"github.com/nix-cached/cached/signing"
)

const useUsage = `usage: cached use [--token T | --token-file F] [--public-key KEY]... [--post-build-hook]
                  [--nix-conf FILE] [--netrc FILE] [--dry-run] URL

Configures Nix on this machine to substitute from the cache at URL: adds
extra-substituters and extra-trusted-public-keys (read from the cache, or
given with --public-key) to nix.conf, the system one (/etc/nix/nix.conf,
or $NIX_CONF_DIR/nix.conf) for root and the user's
(~/.config/nix/nix.conf) otherwise, and a token, if given, to the netrc
file Nix reads. With --post-build-hook, Nix also pushes everything it
builds to the cache (see cached post-build-hook). It merges with what is
there and can be run again. It records URL as the default of cached push
and cached collect.`

// clientFlags are the flags the client commands share.
type clientFlags struct {
	token, tokenFile *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		token:     fs.String("token", "", "a `token` for the cache (a push token to push; a read token to read a private cache)"),
		tokenFile: fs.String("token-file", "", "read the token from this `file`"),
	}
}

// tokenValue returns the token given by --token or --token-file.
func (c clientFlags) tokenValue() (string, error) {
	if *c.token != "" && *c.tokenFile != "" {
		return "", fmt.Errorf("%w: give --token or --token-file, not both", errUsage)
	}
	token := *c.token
	if *c.tokenFile != "" {
		b, err := os.ReadFile(*c.tokenFile)
		if err != nil {
			return "", err
		}
		token = string(b)
	}
	token = strings.TrimSpace(token)
	if strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("%w: the token holds whitespace", errUsage)
	}
	return token, nil
}

func runUse(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("use", flag.ContinueOnError)
	usageFlags(fs, useUsage)
	cf := addClientFlags(fs)
	nixConf := fs.String("nix-conf", "", "write this nix.conf `file` instead of the system's (root) or the user's")
	netrc := fs.String("netrc", "", "write the token to this netrc `file` (default: the one nix.conf names, or netrc beside it)")
	dryRun := fs.Bool("dry-run", false, "say what would change, change nothing")
	var pubKeys listFlag
	fs.Var(&pubKeys, "public-key", "trust this `key` (NAME:BASE64; repeatable) instead of those the cache lists, which must include it")
	hook := fs.Bool("post-build-hook", false, "push every build to the cache: write a hook script next to nix.conf that runs this cached binary, and name it in post-build-hook")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: %s", errUsage, useUsage)
	}
	var keys []string
	for _, v := range pubKeys.vals {
		for _, k := range strings.Fields(v) {
			if _, err := signing.ParsePublicKey(k); err != nil {
				return fmt.Errorf("%w: --public-key %s: %v", errUsage, k, err)
			}
			keys = append(keys, k)
		}
	}
	token, err := cf.tokenValue()
	if err != nil {
		return err
	}
	cache, err := client.NewCache(fs.Arg(0), "")
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	home, _ := os.UserHomeDir()
	files := client.FindConfFiles(nil, home)
	root := os.Geteuid() == 0
	u := &client.Use{Cache: cache, Conf: *nixConf, Netrc: *netrc, Token: token, DryRun: *dryRun, Out: stdout,
		DefaultNetrc: filepath.Join(filepath.Dir(files.System), "netrc"), State: client.StateFile(nil, home),
		StoreDir: storeDir(), Keys: keys}
	if u.Conf == "" {
		u.Conf = files.User
		if root {
			u.Conf = files.System
		}
	}
	if *hook {
		if u.HookBin, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this cached binary for the post-build-hook: %w", err)
		}
		u.Hook = filepath.Join(filepath.Dir(u.Conf), "cached-post-build-hook")
		if daemonSocket() && u.Conf != files.System {
			u.Notes = append(u.Notes, "a nix-daemon runs here: it runs builds and their post-build-hook, and reads post-build-hook only from "+files.System+
				" (sudo cached use --post-build-hook "+cache.Redacted()+")")
		}
	}
	if strings.Contains(cache.URL, "@") {
		u.Notes = append(u.Notes, "the URL holds a credential: nix.conf is readable by every user here, and Nix prints the URL in its messages; "+
			"give it a read token (cached token create --scope read), never a push token")
	}
	if daemonSocket() {
		if root && u.Conf == files.System {
			u.Notes = append(u.Notes, "a nix-daemon runs here: restart it to read the new settings (systemctl restart nix-daemon; on macOS: launchctl kickstart -k system/org.nixos.nix-daemon)")
		} else if !root {
			u.Notes = append(u.Notes, "a nix-daemon runs here and substitutes for you: it uses these settings only if you are in trusted-users, or if an administrator lists "+
				cache.Redacted()+" in trusted-substituters and its key in trusted-public-keys of "+files.System+" (or runs `sudo cached use "+cache.Redacted()+"`)")
		}
	}
	return u.Run(ctx)
}

// storeDir is the store directory this machine's Nix uses.
func storeDir() string {
	if d := os.Getenv("NIX_STORE_DIR"); d != "" {
		return d
	}
	return "/nix/store"
}

// daemonSocket tells whether a nix-daemon listens on this machine.
func daemonSocket() bool {
	dir := os.Getenv("NIX_STATE_DIR")
	if dir == "" {
		dir = "/nix/var/nix"
	}
	_, err := os.Stat(filepath.Join(dir, "daemon-socket", "socket"))
	return err == nil
}

const pushUsage = `usage: cached push [--to URL] [--store STORE] [--stdin] [--pin NAME [--keep N]] PATH...

Pushes the closures of PATHs (store paths, or links to them such as
./result) to the cache with nix copy --to, showing progress, so that this
machine can substitute them back right away: Nix's own narinfo cache
forgets what it recorded of them (unsigned uploads, misses from before the
build). The push token comes from the netrc file Nix reads (cached use
--token puts it there), or --token/--token-file.`

func runPush(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	usageFlags(fs, pushUsage)
	pf := addPushFlags(fs, "push from")
	stdin := fs.Bool("stdin", false, "read the paths from standard input, one a line, after any given as arguments")
	pin := fs.String("pin", "", "pin the pushed path in the cache under this `name` (one path only)")
	keep := fs.Int("keep", 0, "with --pin: how many previous pins of the name to keep")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	paths := fs.Args()
	if *stdin {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				paths = append(paths, l)
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: no paths to push\n%s", errUsage, pushUsage)
	}
	if *pin != "" && len(paths) != 1 {
		return fmt.Errorf("%w: --pin takes one path (the root of what to keep), got %d", errUsage, len(paths))
	}
	p, err := pf.push(ctx, stdout)
	if err != nil {
		return err
	}
	resolved := make([]string, len(paths))
	for i, path := range paths {
		if resolved[i], err = resolvePath(path); err != nil {
			return err
		}
	}
	if _, err := p.Run(ctx, resolved); err != nil {
		return err
	}
	if *pin != "" {
		if err := p.Cache.Pin(ctx, *pin, resolved[0], *keep); err != nil {
			return fmt.Errorf("pinning %s as %s: %w", resolved[0], *pin, err)
		}
		fmt.Fprintf(stdout, "pinned %s as %s\n", resolved[0], *pin)
	}
	return nil
}

// pushFlags are the flags of the commands that push: push and collect.
type pushFlags struct {
	clientFlags
	to, store, params *string
}

// addPushFlags adds them to fs; verb says what the command does with
// --store ("push from").
func addPushFlags(fs *flag.FlagSet, verb string) pushFlags {
	return pushFlags{
		clientFlags: addClientFlags(fs),
		to:          fs.String("to", "", "the cache's `URL` (default: the one cached use configured)"),
		store:       fs.String("store", "", verb+" this `store` (Nix's store URL syntax; default: the default store)"),
		params: fs.String("params", "compression=zstd",
			"store URL `parameters` of the nix copy (zstd is cheap for the client, and stored as it comes)"),
	}
}

// push returns the push the flags describe: to the cache named by --to,
// or the one cached use configured, with the token from the flags,
// $CACHED_TOKEN (through the flags), or the netrc file Nix reads.
func (f pushFlags) push(ctx context.Context, stdout io.Writer) (*client.Push, error) {
	home, _ := os.UserHomeDir()
	to := *f.to
	if to == "" {
		var err error
		if to, err = client.DefaultURL(client.StateFile(nil, home)); err != nil {
			return nil, err
		}
		if to == "" {
			return nil, fmt.Errorf("%w: no --to URL, and cached use has not configured a cache here", errUsage)
		}
	}
	token, err := f.tokenValue()
	if err != nil {
		return nil, err
	}
	cache, err := client.NewCache(to, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	nix := &client.Nix{Store: *f.store}
	if cache.Token == "" {
		if file, err := nix.Config(ctx, "netrc-file"); err == nil && file != "" {
			if text, err := os.ReadFile(file); err == nil {
				cache.Token = client.NetrcPassword(string(text), cache.Host())
			}
		}
	}
	return &client.Push{Cache: cache, Nix: nix, Params: *f.params, Out: stdout, TTY: isTerminal(stdout),
		DiskCaches: client.DiskCacheFiles(nil, home)}, nil
}

// resolvePath follows a link to a store path (./result), as nix copy does.
func resolvePath(p string) (string, error) {
	if strings.HasPrefix(p, storeDir()+"/") {
		return p, nil
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if !strings.HasPrefix(r, storeDir()+"/") {
		return "", fmt.Errorf("%w: %s is not in %s", errUsage, p, storeDir())
	}
	return r, nil
}

// isTerminal tells whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

const collectUsage = `usage: cached collect [--to URL] [--store STORE] [--dry-run]

A garbage collection of the local store that archives before it deletes:
it finds what nix-store --gc would delete, pushes what the cache lacks,
checks that the cache serves each path with the same contents and a valid
signature by its key, and deletes only those (nix-store --delete, which
keeps a path that became alive meanwhile). A path the cache does not
hold is never deleted. Needs a push token (see cached push).`

func runCollect(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	usageFlags(fs, collectUsage)
	pf := addPushFlags(fs, "collect")
	dryRun := fs.Bool("dry-run", false, "list what would be archived and freed; push and delete nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: collect takes no arguments\n%s", errUsage, collectUsage)
	}
	p, err := pf.push(ctx, stdout)
	if err != nil {
		return err
	}
	keys, err := p.Cache.PublicKeys(ctx)
	if err != nil {
		return err
	}
	c := &client.Collect{Push: p, Keys: keys, DryRun: *dryRun, Out: stdout}
	_, err = c.Run(ctx)
	return err
}
