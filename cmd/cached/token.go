package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
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

// tokenCommands are the subcommands of cached token.
var tokenCommands = []subcommand{
	{"create", "[--name NAME] [--scope push|read|admin]"},
	{"ls", ""},
	{"rm", "NAME"},
}

const tokenWhat = `Manages the tokens stored (hashed) in the catalog: push tokens upload,
read tokens read a private cache, admin tokens do everything. It works
while a server runs on the same data directory.`

// runToken manages the tokens stored (hashed) in the catalog. It works
// while a server runs on the same data directory.
func runToken(ctx context.Context, args []string, stdout io.Writer) error {
	sub, err := groupCommand(stdout, "token", tokenWhat, tokenCommands, args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	data := addDataFlags(fs)
	var name, scope *string
	switch sub {
	case "create":
		usageFlags(fs, subUsage("token", tokenCommands, sub, "Creates a token and prints its secret, once: only its hash is stored."))
		name = fs.String("name", "", "token `name` (default: token-<time>)")
		scope = fs.String("scope", string(catalog.ScopePush), "what the token allows: `push` (and read), read, or admin (everything)")
	case "ls":
		usageFlags(fs, subUsage("token", tokenCommands, sub, "Lists the tokens: name, scope, creation time."))
	case "rm":
		usageFlags(fs, subUsage("token", tokenCommands, sub, "Removes the token called NAME: it stops working at once."))
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	wantArgs := map[string]int{"create": 0, "ls": 0, "rm": 1}[sub]
	if fs.NArg() != wantArgs {
		return fmt.Errorf("%w: %s", errUsage, strings.TrimPrefix(subUsage("token", tokenCommands, sub, ""), "usage: "))
	}
	var sc catalog.Scope
	if sub == "create" {
		sc = catalog.Scope(*scope)
		if sc != catalog.ScopePush && sc != catalog.ScopeRead && sc != catalog.ScopeAdmin {
			return fmt.Errorf("%w: --scope %q: want push, read or admin", errUsage, *scope)
		}
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("token %s: %w", sub, err)
	}
	defer b.Close()
	switch sub {
	case "create":
		n := *name
		if n == "" {
			n = "token-" + time.Now().UTC().Format("20060102-150405")
		}
		secret, err := createToken(ctx, b.cat, n, sc)
		if errors.Is(err, catalog.ErrConflict) {
			return fmt.Errorf("a token named %q exists already: choose another --name, or remove it first (cached token rm %s)", n, n)
		}
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
	}
	if err := b.cat.DeleteToken(ctx, fs.Arg(0)); errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("no token named %q (cached token ls lists them)", fs.Arg(0))
	} else if err != nil {
		return err
	}
	return nil
}
