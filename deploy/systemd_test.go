package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/testtool"
)

// TestSystemdUnit checks deploy/systemd/cached.service with systemd's own
// tools: `systemd-analyze verify` (with ExecStart pointing at the binary
// built as the Dockerfile builds it, since verify wants it to exist), and
// `systemd-analyze security --offline`, whose exposure score must stay
// low. Every CACHED_* variable it sets must be a setting of cached serve.
func TestSystemdUnit(t *testing.T) {
	analyze := testtool.Find(t, "SYSTEMD_ANALYZE", "systemd-analyze is not installed (apt-get install systemd)", "systemd-analyze")
	unit, err := os.ReadFile(filepath.Join("systemd", "cached.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	if !strings.Contains(text, "ExecStart=/usr/local/bin/cached serve\n") {
		t.Fatalf("ExecStart is not /usr/local/bin/cached serve")
	}
	flags := serveFlags(t)
	for _, m := range regexp.MustCompile(`(?m)^Environment=(CACHED_[A-Z_]+)=`).FindAllStringSubmatch(text, -1) {
		if !flags[flagOf(m[1])] {
			t.Errorf("Environment=%s: cached serve has no --%s", m[1], flagOf(m[1]))
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "cached.service")
	text = strings.Replace(text, "ExecStart=/usr/local/bin/cached", "ExecStart="+cachedBinary(t), 1)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", file).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", file).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for cached.service: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(m[1], 64); score > 2.0 {
		t.Errorf("exposure level %s, want at most 2.0 (systemd's OK band):\n%s", m[1], out)
	}
}
