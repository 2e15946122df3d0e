package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one logical Dockerfile line: FROM, RUN, COPY, …
type instruction struct {
	cmd   string   // upper case
	flags []string // --mount=…, --from=…, --chown=…
	args  string   // the rest, continuations joined
	line  int
}

// stage is a FROM and the instructions under it.
type stage struct {
	image, name string
	ins         []instruction
}

// dockerfile is a parsed Dockerfile, with the facts the tests compare.
type dockerfile struct {
	stages []stage
}

// parseDockerfile splits a Dockerfile into stages of instructions. It knows
// only the syntax this repository's Dockerfile uses: comments, backslash
// continuations, leading --flags.
func parseDockerfile(text string) (*dockerfile, error) {
	var logical []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(line, `\`)
		cur.WriteString(strings.TrimSuffix(line, `\`))
		cur.WriteByte(' ')
		if cont {
			continue
		}
		in, err := splitInstruction(cur.String(), start)
		if err != nil {
			return nil, err
		}
		logical = append(logical, in)
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation at end of file", start)
	}
	d := &dockerfile{}
	for _, in := range logical {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				return nil, fmt.Errorf("line %d: FROM %q", in.line, in.args)
			}
			d.stages = append(d.stages, st)
			continue
		}
		if len(d.stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("line %d: %s before FROM", in.line, in.cmd)
		}
		st := &d.stages[len(d.stages)-1]
		st.ins = append(st.ins, in)
	}
	return d, nil
}

func splitInstruction(s string, line int) (instruction, error) {
	s = strings.TrimSpace(s)
	word, rest, _ := strings.Cut(s, " ")
	in := instruction{cmd: strings.ToUpper(word), line: line}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		in.flags = append(in.flags, flag)
		rest = strings.TrimSpace(after)
	}
	in.args = rest
	if in.args == "" {
		return in, fmt.Errorf("line %d: %s without arguments", line, in.cmd)
	}
	return in, nil
}

// stage returns the stage named name ("" for the last one).
func (d *dockerfile) stage(name string) *stage {
	if name == "" {
		return &d.stages[len(d.stages)-1]
	}
	for i := range d.stages {
		if d.stages[i].name == name {
			return &d.stages[i]
		}
	}
	return nil
}

// all returns the stage's instructions of one kind.
func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// one returns the stage's only instruction of one kind.
func (s *stage) one(t *testing.T, cmd string) instruction {
	t.Helper()
	all := s.all(cmd)
	if len(all) != 1 {
		t.Fatalf("stage %q: want exactly one %s, have %d", s.name, cmd, len(all))
	}
	return all[0]
}

// words splits space-separated words, keeping double-quoted spans together
// and removing their quotes.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case !quoted && (r == ' ' || r == '\t'):
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// keyValues parses ENV and LABEL arguments: key=value words.
func keyValues(t *testing.T, in instruction) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, w := range words(in.args) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			t.Fatalf("line %d: %s %q: want key=value", in.line, in.cmd, w)
		}
		m[k] = v
	}
	return m
}

// env returns the stage's ENV settings.
func (s *stage) env(t *testing.T) map[string]string {
	m := map[string]string{}
	for _, in := range s.all("ENV") {
		for k, v := range keyValues(t, in) {
			m[k] = v
		}
	}
	return m
}

// execForm decodes a JSON-array ENTRYPOINT or CMD.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("line %d: %s must be a JSON array (exec form, so signals reach cached): %v", in.line, in.cmd, err)
	}
	return v
}

// flagValue returns the value of --name=value among flags.
func flagValue(flags []string, name string) (string, bool) {
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// imageFacts are the runtime image's settings that the manifests must agree with.
type imageFacts struct {
	entrypoint, cmd []string
	env, labels     map[string]string
	uid, gid        int64
	port            int32
	volume          string
	binary          string // where the build stage writes the binary
	build           instruction
	buildEnv        map[string]string
}

var outputFlag = regexp.MustCompile(`(^|\s)-o\s+(\S+)`)

// loadDockerfile parses ../Dockerfile and extracts the image's facts,
// checking the structure the other tests rely on.
func loadDockerfile(t *testing.T) imageFacts {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDockerfile(string(text))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(d.stages) != 2 {
		t.Fatalf("Dockerfile: want a build stage and a runtime stage, have %d stages", len(d.stages))
	}
	build, run := d.stage("build"), d.stage("")
	if build == nil {
		t.Fatal(`Dockerfile: no stage named "build"`)
	}
	var f imageFacts
	for _, in := range build.all("RUN") {
		if strings.HasPrefix(in.args, "go build ") {
			f.build = in
		}
	}
	if f.build.cmd == "" {
		t.Fatal("Dockerfile: the build stage has no RUN go build")
	}
	m := outputFlag.FindStringSubmatch(f.build.args)
	if m == nil {
		t.Fatal("Dockerfile: go build has no -o")
	}
	f.binary = m[2]
	f.buildEnv = build.env(t)
	f.entrypoint = execForm(t, run.one(t, "ENTRYPOINT"))
	f.cmd = execForm(t, run.one(t, "CMD"))
	if len(f.entrypoint) == 0 {
		t.Fatal("Dockerfile: empty ENTRYPOINT")
	}
	f.env = run.env(t)
	f.labels = map[string]string{}
	for _, in := range run.all("LABEL") {
		for k, v := range keyValues(t, in) {
			f.labels[k] = v
		}
	}
	user := run.one(t, "USER").args
	u, g, _ := strings.Cut(user, ":")
	if f.uid, err = strconv.ParseInt(u, 10, 64); err != nil {
		t.Fatalf("Dockerfile: USER %q: want a numeric uid (runAsNonRoot can only check numbers)", user)
	}
	if f.gid, err = strconv.ParseInt(g, 10, 64); err != nil {
		t.Fatalf("Dockerfile: USER %q: want uid:gid", user)
	}
	port, err := strconv.ParseInt(strings.TrimSuffix(run.one(t, "EXPOSE").args, "/tcp"), 10, 32)
	if err != nil {
		t.Fatalf("Dockerfile: EXPOSE: %v", err)
	}
	f.port = int32(port)
	f.volume = run.one(t, "VOLUME").args
	var copied, owned bool
	for _, in := range run.all("COPY") {
		from, _ := flagValue(in.flags, "from")
		chown, _ := flagValue(in.flags, "chown")
		src := strings.Fields(in.args)
		if from != "build" || len(src) != 2 {
			continue
		}
		if src[0] == f.binary {
			copied = src[1] == f.entrypoint[0]
		}
		// The volume's directory comes from the build stage as an entry of
		// its parent, owned by the image's user.
		parent := strings.TrimSuffix(path.Dir(f.volume), "/") + "/"
		if chown == fmt.Sprintf("%d:%d", f.uid, f.gid) && src[1] == parent && strings.HasSuffix(src[0], parent) {
			owned = true
		}
	}
	if !copied {
		t.Errorf("Dockerfile: no COPY --from=build %s %s (the ENTRYPOINT)", f.binary, f.entrypoint[0])
	}
	if !owned {
		t.Errorf("Dockerfile: the VOLUME %s is not copied from the build stage owned by %d:%d", f.volume, f.uid, f.gid)
	}
	return f
}

func TestDockerfile(t *testing.T) {
	f := loadDockerfile(t)
	if got := f.buildEnv["CGO_ENABLED"]; got != "1" {
		t.Errorf("build stage: CGO_ENABLED=%q, want 1 (SQLite is cgo)", got)
	}
	for _, want := range []string{
		"-tags netgo,osusergo,sqlite_omit_load_extension",
		"-ldflags '-s -w -linkmode external -extldflags -static'",
		"./cmd/cached",
	} {
		if !strings.Contains(f.build.args, want) {
			t.Errorf("go build: missing %s", want)
		}
	}
	var targets []string
	for _, fl := range f.build.flags {
		if m, ok := strings.CutPrefix(fl, "--mount="); ok && strings.Contains(m, "type=cache") {
			for _, kv := range strings.Split(m, ",") {
				if v, ok := strings.CutPrefix(kv, "target="); ok {
					targets = append(targets, v)
				}
			}
		}
	}
	// GOMODCACHE and GOCACHE of the golang image (GOPATH=/go, user root).
	for _, want := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
		if !slices.Contains(targets, want) {
			t.Errorf("go build: no BuildKit cache mount on %s (have %v)", want, targets)
		}
	}
	if !slices.Equal(f.entrypoint, []string{"/cached"}) || !slices.Equal(f.cmd, []string{"serve"}) {
		t.Errorf(`ENTRYPOINT %q CMD %q, want ["/cached"] ["serve"]`, f.entrypoint, f.cmd)
	}
	if f.uid != 65532 || f.gid != 65532 {
		t.Errorf("USER %d:%d, want the distroless nonroot user 65532:65532", f.uid, f.gid)
	}
	if f.env["CACHED_LISTEN"] != ":"+strconv.Itoa(int(f.port)) {
		t.Errorf("ENV CACHED_LISTEN=%q does not listen on every interface at EXPOSE %d", f.env["CACHED_LISTEN"], f.port)
	}
	if f.env["CACHED_DATA_DIR"] != f.volume {
		t.Errorf("ENV CACHED_DATA_DIR=%q, but VOLUME %s", f.env["CACHED_DATA_DIR"], f.volume)
	}
	for _, k := range []string{"title", "description", "source", "version", "revision"} {
		if f.labels["org.opencontainers.image."+k] == "" {
			t.Errorf("LABEL org.opencontainers.image.%s is missing", k)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	const text = `# syntax=docker/dockerfile:1
ARG X=1
FROM golang AS build
# a comment
RUN --mount=type=cache,target=/a \
    # inside a continuation
    go build \
    -o /out/x .
FROM scratch
LABEL a="b c" d=e
`
	d, err := parseDockerfile(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.stages) != 2 || d.stages[0].name != "build" || d.stages[1].image != "scratch" {
		t.Fatalf("stages %+v", d.stages)
	}
	run := d.stages[0].one(t, "RUN")
	if run.args != "go build  -o /out/x ." || !slices.Equal(run.flags, []string{"--mount=type=cache,target=/a"}) || run.line != 5 {
		t.Errorf("RUN %+v", run)
	}
	if got := keyValues(t, d.stages[1].one(t, "LABEL")); got["a"] != "b c" || got["d"] != "e" {
		t.Errorf("LABEL %v", got)
	}
	for _, bad := range []string{"RUN x\n", "FROM a\nRUN x \\\n", "FROM a b c d\n", "FROM a\nRUN\n"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
