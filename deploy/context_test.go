package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// binDir holds the cached binary built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cached-deploy-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// ignoreRule is one line of a .dockerignore file.
type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

// parseDockerignore compiles .dockerignore lines with BuildKit's meaning:
// paths relative to the context root, '*' and '?' within one path element,
// '**' across any number of them, '!' re-including, the last match winning.
func parseDockerignore(text string) ([]ignoreRule, error) {
	var rules []ignoreRule
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			r.negate, line = true, strings.TrimSpace(rest)
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		var b strings.Builder
		b.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				b.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				b.WriteString(".*")
				i++
			case c == '*':
				b.WriteString("[^/]*")
			case c == '?':
				b.WriteString("[^/]")
			default:
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		b.WriteString("$")
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, fmt.Errorf(".dockerignore %q: %w", line, err)
		}
		r.re = re
		rules = append(rules, r)
	}
	return rules, sc.Err()
}

// excluded reports whether the slash-separated path rel is left out of the
// context: a rule matches a path or any directory above it.
func excluded(rules []ignoreRule, rel string) bool {
	out := false
	for _, r := range rules {
		p := rel
		for {
			if r.re.MatchString(p) {
				out = !r.negate
				break
			}
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
	return out
}

// buildContext copies the repository into dst as `docker build .` would
// send it, and returns the number of bytes copied.
func buildContext(t *testing.T, dst string) int64 {
	t.Helper()
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parseDockerignore(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	var total int64
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if excluded(rules, rel) {
			if d.IsDir() {
				return filepath.SkipDir // the file has no '!' rules
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			n, err := copyFile(path, target)
			total += n
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copying the build context: %v", err)
	}
	return total
}

func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

var (
	buildOnce sync.Once
	buildErr  error
	buildPath string
)

// maxContext bounds the build context: the Go sources are about 2 MB.
const maxContext = 16 << 20

// cachedBinary builds cached once, with the Dockerfile's own `go build`
// command and build-stage environment, in a copy of the repository
// filtered by .dockerignore: what `docker buildx build` would produce.
func cachedBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// Stays set if a t.Fatal below ends this function early.
		buildErr = errors.New("the first attempt failed")
		f := loadDockerfile(t)
		ctx := filepath.Join(binDir, "context")
		size := buildContext(t, ctx)
		if size > maxContext {
			buildErr = fmt.Errorf("build context is %d bytes: .dockerignore lets too much in", size)
			return
		}
		t.Logf("build context: %d bytes", size)
		// The Dockerfile's output path, under binDir (go build creates it).
		out := filepath.Join(binDir, "root", f.binary)
		cmdline := outputFlag.ReplaceAllLiteralString(f.build.args, " -o "+out)
		cmd := exec.Command("sh", "-c", cmdline)
		cmd.Dir = ctx
		cmd.Env = os.Environ()
		for k, v := range f.buildEnv {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", cmdline, err, stderr.String())
			return
		}
		if strings.Contains(stderr.String(), "statically linked applications requires at runtime") {
			// glibc's NSS (getaddrinfo, getpwnam) crept in: the binary
			// would need the host's shared libraries at run time.
			buildErr = fmt.Errorf("%s: not self-contained:\n%s", cmdline, stderr.String())
			return
		}
		if stderr.Len() > 0 {
			t.Logf("go build printed:\n%s", stderr.String())
		}
		// Let the unprivileged user of the pod tests run it.
		for p := out; p != binDir; p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil {
				buildErr = err
				return
			}
		}
		if err := os.Chmod(binDir, 0o755); err != nil {
			buildErr = err
			return
		}
		buildPath, buildErr = out, nil
	})
	if buildErr != nil {
		t.Fatalf("building cached as the Dockerfile does: %v", buildErr)
	}
	return buildPath
}

func TestStaticBinary(t *testing.T) {
	bin := cachedBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static, it needs a libc the runtime image lacks", bin, p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s imports shared libraries %v (%v)", bin, libs, err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("static binary: %d bytes", st.Size())

	// The embedded defaults, but a free port: a data directory in the
	// working directory, a key and a push token made on first start.
	dir := t.TempDir()
	p := startServe(t, bin, dir, []string{"CACHED_LISTEN=127.0.0.1:0"})
	body := p.get(t, "/nix-cache-info", 200)
	if !strings.Contains(body, "StoreDir: /nix/store\n") {
		t.Errorf("/nix-cache-info: %q", body)
	}
	p.stop(t)
	out := p.Stdout.String()
	if !strings.Contains(out, "generated signing key") || !strings.Contains(out, "push token") {
		t.Errorf("first start did not make a key and a token:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "cached-data", "cached.db")); err != nil {
		t.Errorf("no catalog in the default data directory: %v", err)
	}
}

func TestDockerignore(t *testing.T) {
	rules, err := parseDockerignore("**/testdata\n*.md\n!keep.md\nbin\n/abs/x\n")
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"testdata":             true,
		"nar/testdata/a.nar":   true,
		"a/b/testdata":         true,
		"a/testdatax":          false,
		"README.md":            true,
		"keep.md":              false,
		"docs/x.md":            false, // '*' stays within one element
		"bin/cached":           true,
		"cmd/bin":              false,
		"abs/x/y":              true,
		"cmd/cached/main.go":   false,
		"catalog/sqlite/a.sql": false,
	} {
		if got := excluded(rules, rel); got != want {
			t.Errorf("excluded(%q) = %v, want %v", rel, got, want)
		}
	}
}
