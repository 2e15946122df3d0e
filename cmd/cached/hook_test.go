package main

import (
	"context"
	"strings"
	"testing"
)

// TestPostBuildHook checks that the hook never fails a build: whatever
// goes wrong is reported and it exits 0; only a malformed command line
// (which cached use never writes) is a usage error.
func TestPostBuildHook(t *testing.T) {
	t.Setenv("CACHED_TOKEN", "cached_x") // no netrc lookup through nix show-config
	t.Setenv("NIX_CONFIG", "substituters =")
	for _, c := range []struct {
		name, outPaths, drvPath string
		args                    []string
		code                    int
		want                    string
	}{
		{"no outputs", "", "", nil, 0, "no output paths: nothing to push"},
		{"unknown derivation", "", "/nix/store/00000000000000000000000000000000-x.drv", nil, 0, "the outputs of /nix/store/00000000000000000000000000000000-x.drv are unknown"},
		{"path that is not there", "/nix/store/00000000000000000000000000000000-x", "", nil, 0, "push to http://127.0.0.1:9 failed; the build is not affected"},
		{"an argument", "", "", []string{"extra"}, 2, "takes no arguments"},
		{"a bad flag", "", "", []string{"--timeout", "soon"}, 2, `--timeout "soon": want a duration`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("OUT_PATHS", c.outPaths)
			t.Setenv("DRV_PATH", c.drvPath)
			var stdout, stderr strings.Builder
			args := append([]string{"post-build-hook", "--to", "http://127.0.0.1:9"}, c.args...)
			if code := run(context.Background(), args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, c.code, c.want, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("wrote to standard output: %q", stdout.String())
			}
		})
	}
}
