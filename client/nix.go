package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/nix-cached/cached/nixhash"
)

// Nix runs the Nix command-line tools on one store.
type Nix struct {
	// Store is the store to work on, in Nix's store URL syntax ("" for
	// the default one), passed as --store.
	Store string
	// Env is added to the environment of every command.
	Env []string
}

// command returns a Nix command with the store and environment set.
func (n *Nix) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := []string{}
	if name == "nix" {
		full = append(full, "--extra-experimental-features", "nix-command")
	}
	if n.Store != "" {
		full = append(full, "--store", n.Store)
	}
	cmd := exec.CommandContext(ctx, name, append(full, args...)...)
	cmd.Env = append(os.Environ(), n.Env...)
	return cmd
}

// output runs a Nix command and returns its standard output; a failure
// carries what Nix printed on standard error.
func (n *Nix) output(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := n.command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = stdin, &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// PathInfo is what the local store knows of a path.
type PathInfo struct {
	Path       string
	NarHash    nixhash.Hash
	NarSize    int64
	References []string // store paths
}

// PathInfos returns the path info of paths (with their closures when
// recursive), each path once; paths that are not valid are left out. Nix 2.8 prints a list, 2.19 and later an
// object keyed by path; both are read. The paths go as arguments (Nix 2.8
// has no --stdin for path-info), a thousand at a time.
func (n *Nix) PathInfos(ctx context.Context, recursive bool, paths []string) ([]PathInfo, error) {
	var infos []PathInfo
	seen := map[string]bool{}
	for start := 0; start < len(paths); start += 1000 {
		args := []string{"path-info", "--json"}
		if recursive {
			args = append(args, "--recursive")
		}
		batch, err := n.pathInfos(ctx, append(args, paths[start:min(start+1000, len(paths))]...))
		if err != nil {
			return nil, err
		}
		for _, in := range batch {
			if !seen[in.Path] {
				seen[in.Path] = true
				infos = append(infos, in)
			}
		}
	}
	return infos, nil
}

// pathInfos runs one nix path-info --json and reads its output.
func (n *Nix) pathInfos(ctx context.Context, args []string) ([]PathInfo, error) {
	out, err := n.output(ctx, nil, "nix", args...)
	if err != nil {
		return nil, err
	}
	type entry struct {
		Path       string   `json:"path"`
		Valid      *bool    `json:"valid"`
		NarHash    string   `json:"narHash"`
		NarSize    int64    `json:"narSize"`
		References []string `json:"references"`
	}
	var list []entry
	if err := json.Unmarshal(out, &list); err != nil {
		var byPath map[string]*entry
		if err2 := json.Unmarshal(out, &byPath); err2 != nil {
			return nil, fmt.Errorf("nix path-info --json: %w", err)
		}
		for p, e := range byPath {
			if e != nil { // null: not a valid path
				e.Path = p
				list = append(list, *e)
			}
		}
	}
	infos := make([]PathInfo, 0, len(list))
	for _, e := range list {
		if e.Valid != nil && !*e.Valid {
			continue
		}
		h, err := nixhash.Parse(e.NarHash)
		if err != nil {
			return nil, fmt.Errorf("nix path-info: %s: %w", e.Path, err)
		}
		infos = append(infos, PathInfo{Path: e.Path, NarHash: h, NarSize: e.NarSize, References: e.References})
	}
	return infos, nil
}

// Config returns the value of a Nix setting as Nix sees it.
func (n *Nix) Config(ctx context.Context, key string) (string, error) {
	out, err := n.output(ctx, nil, "nix", "show-config")
	if err != nil {
		return "", err
	}
	v, _ := ConfValue(string(out), key)
	return v, nil
}

// Dead returns the paths the garbage collector would delete now, as
// `nix-store --gc --print-dead` finds them (keep-outputs and
// keep-derivations included).
func (n *Nix) Dead(ctx context.Context) ([]string, error) {
	out, err := n.output(ctx, nil, "nix-store", "--gc", "--print-dead")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Delete deletes paths with `nix-store --delete`, which deletes referrers
// before what they refer to, skips a path that a path not being deleted
// refers to, and stops at the first path that is alive (a root, reachable
// from one, or in use). It returns the paths that are gone afterwards, as
// the store says, and the path Nix refused as alive, if any.
func (n *Nix) Delete(ctx context.Context, paths []string) (gone map[string]bool, alive []string, err error) {
	gone = make(map[string]bool, len(paths))
	for start := 0; start < len(paths); start += 1000 {
		batch := paths[start:min(start+1000, len(paths))]
		// A refusal fails the command: what went is read from the store.
		_, delErr := n.output(ctx, nil, "nix-store", append([]string{"--delete"}, batch...)...)
		if m := refusedAlive.FindStringSubmatch(fmt.Sprint(delErr)); m != nil {
			alive = append(alive, m[1])
		}
		out, err := n.output(ctx, nil, "nix-store", append([]string{"--check-validity", "--print-invalid"}, batch...)...)
		if err != nil {
			return gone, alive, fmt.Errorf("after deleting (%v): %w", delErr, err)
		}
		for _, p := range strings.Fields(string(out)) {
			gone[p] = true
		}
	}
	return gone, alive, nil
}

// refusedAlive finds the path in Nix's refusal to delete a live path.
var refusedAlive = regexp.MustCompile(`[Cc]annot delete path '([^']+)'`)
