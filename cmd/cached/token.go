package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
)

// createToken makes a token, stores its hash and returns its secret.
func createToken(ctx context.Context, cat catalog.Catalog, name string, scope catalog.Scope) (string, error) {
	secret, err := auth.NewSecret()
	if err != nil {
		return "", err
	}
	t := catalog.Token{Name: name, Hash: auth.Hash(secret), Scope: scope, CreatedAt: time.Now()}
	if err := cat.CreateToken(ctx, t); err != nil {
		return "", fmt.Errorf("creating token %q: %w", name, err)
	}
	return secret, nil
}

const tokenUsage = `usage:
  cached token create [--name NAME] [--scope push|read|admin] [--data-dir DIR]
  cached token ls [--data-dir DIR]
  cached token rm NAME [--data-dir DIR]`

// runToken manages the tokens stored (hashed) in the catalog. It works
// while a server runs on the same data directory.
func runToken(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, tokenUsage)
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	data := addDataFlags(fs)
	name := fs.String("name", "", "token `name` (default: token-<time>)")
	scope := fs.String("scope", string(catalog.ScopePush), "what the token allows: `push` (and read), read, or admin (everything)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("token %s: %w", args[0], err)
	}
	defer b.Close()
	switch args[0] {
	case "create":
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: %s", errUsage, tokenUsage)
		}
		sc := catalog.Scope(*scope)
		if sc != catalog.ScopePush && sc != catalog.ScopeRead && sc != catalog.ScopeAdmin {
			return fmt.Errorf("%w: --scope %q (want push, read or admin)", errUsage, *scope)
		}
		n := *name
		if n == "" {
			n = "token-" + time.Now().UTC().Format("20060102-150405")
		}
		secret, err := createToken(ctx, b.cat, n, sc)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		return nil
	case "ls":
		toks, err := b.cat.Tokens(ctx)
		if err != nil {
			return err
		}
		for _, t := range toks {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", t.Name, t.Scope, t.CreatedAt.UTC().Format(time.RFC3339))
		}
		return nil
	case "rm":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: %s", errUsage, tokenUsage)
		}
		return b.cat.DeleteToken(ctx, fs.Arg(0))
	}
	return fmt.Errorf("%w: unknown token command %q\n%s", errUsage, args[0], tokenUsage)
}
