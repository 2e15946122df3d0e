package deploy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// operatorOverlay writes a kustomization that builds on
// deploy/kubernetes/<of>, as deploy/README.md tells operators to: body is
// its text after the resources line, where $KUBERNETES stands for the
// path to deploy/kubernetes; files are written next to it.
func operatorOverlay(t *testing.T, of, body string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs) // kustomize takes no absolute paths
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + filepath.Join(rel, of) + "\n" +
		strings.ReplaceAll(body, "$KUBERNETES", rel)
	files["kustomization.yaml"] = k
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// podSecrets are the files an operator puts into cached-secrets.
type podSecrets struct {
	files     map[string]string
	publicKey string
	push      string
	admin     string
}

// newSecrets makes a signing key with `cached keygen` and two tokens.
func newSecrets(t *testing.T) podSecrets {
	t.Helper()
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "signing-key"), filepath.Join(dir, "signing-key.pub")
	if out, err := exec.Command(cachedBinary(t), "keygen", "cache.example-1", sk, pk).CombinedOutput(); err != nil {
		t.Fatalf("cached keygen: %v\n%s", err, out)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	token := func() string {
		var b [32]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	s := podSecrets{publicKey: read(pk), push: token(), admin: token()}
	s.files = map[string]string{
		"signing-key":  read(sk),
		"push-tokens":  "# CI\n" + s.push + "\n",
		"admin-tokens": s.admin + "\n",
	}
	return s
}

// replaceSecrets is the operator overlay's secretGenerator.
const replaceSecrets = `secretGenerator:
  - name: cached-secrets
    behavior: replace
    files:
      - signing-key
      - push-tokens
      - admin-tokens
images:
  - name: registry.example.com/cached
    newName: ghcr.io/example/cached
    newTag: v1.2.3
`

// simulatePod prepares to run the Deployment's container locally with the
// binary built as the Dockerfile builds it: its environment (values and
// secretKeyRefs), its volumes as directories under root (Secrets written
// out with their mode, fsGroup ownership), its arguments, an unwritable
// working directory for the read-only root filesystem, and, when the test
// runs as root, the pod's uid and groups. CACHED_LISTEN becomes a free
// loopback port.
func simulatePod(t *testing.T, m *manifests) (*exec.Cmd, string) {
	t.Helper()
	d, c := theDeployment(t, m)
	spec := &d.Spec.Template.Spec
	root := t.TempDir()
	for _, p := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asRoot := os.Geteuid() == 0
	var uid, gid, fsGroup int64 = -1, -1, -1
	if sc := spec.SecurityContext; sc != nil && sc.RunAsUser != nil && sc.RunAsGroup != nil && sc.FSGroup != nil {
		uid, gid, fsGroup = *sc.RunAsUser, *sc.RunAsGroup, *sc.FSGroup
	}
	own := func(p string, mode os.FileMode) {
		t.Helper()
		if asRoot && fsGroup >= 0 {
			if err := os.Chown(p, 0, int(fsGroup)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, mnt := range c.VolumeMounts {
		host := filepath.Join(root, mnt.MountPath)
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
		vol, ok := volume(spec, mnt.Name)
		switch {
		case !ok:
			t.Fatalf("volume mount %s: no volume", mnt.Name)
		case vol.Secret != nil:
			s, ok := m.secret(vol.Secret.SecretName)
			if !ok || len(vol.Secret.Items) > 0 {
				t.Fatalf("volume %s: Secret %s missing or with items (not simulated)", vol.Name, vol.Secret.SecretName)
			}
			mode := os.FileMode(corev1.SecretVolumeSourceDefaultMode)
			if vol.Secret.DefaultMode != nil {
				mode = os.FileMode(*vol.Secret.DefaultMode)
			}
			for k, v := range s.Data {
				p := filepath.Join(host, k)
				if err := os.WriteFile(p, v, 0o600); err != nil {
					t.Fatal(err)
				}
				own(p, mode)
			}
		case vol.EmptyDir != nil, vol.PersistentVolumeClaim != nil:
			own(host, 0o775|os.ModeSetgid)
		default:
			t.Fatalf("volume %s: kind not simulated", vol.Name)
		}
	}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := m.secret(ref.Name)
			if !ok {
				t.Fatalf("env %s: no Secret %s", e.Name, ref.Name)
			}
			v = string(s.Data[ref.Key])
		case e.ValueFrom != nil:
			t.Fatalf("env %s: source not simulated", e.Name)
		}
		if _, ok := mountFor(c, v); ok && strings.HasPrefix(v, "/") {
			v = filepath.Join(root, v)
		}
		if e.Name == "CACHED_LISTEN" {
			v = "127.0.0.1:0"
		}
		env = append(env, e.Name+"="+v)
	}
	rootfs := filepath.Join(root, "rootfs")
	if err := os.Mkdir(rootfs, 0o555); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cachedBinary(t), c.Args...)
	cmd.Dir, cmd.Env = rootfs, env
	if asRoot && uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(fsGroup)},
		}}
	}
	return cmd, root
}

// TestBasePod runs the base Deployment's container, with secrets filled
// in by an operator overlay, and checks that every setting took effect.
func TestBasePod(t *testing.T) {
	sec := newSecrets(t)
	m := build(t, operatorOverlay(t, "base", replaceSecrets, sec.files))
	checkCommon(t, m, loadDockerfile(t))
	d, c := theDeployment(t, m)
	if c.Image != "ghcr.io/example/cached:v1.2.3" {
		t.Errorf("the operator's images entry did not apply: image %s", c.Image)
	}
	cmd, root := simulatePod(t, m)
	p := start(t, cmd)

	for _, probe := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
		if probe != nil && probe.HTTPGet != nil {
			p.get(t, probe.HTTPGet.Path, http.StatusOK)
		}
	}
	if got := p.get(t, "/public-key", http.StatusOK); strings.TrimSpace(got) != strings.TrimSpace(sec.publicKey) {
		t.Errorf("/public-key %q, want the Secret's key %q", got, sec.publicKey)
	}
	put := func(token string) int {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Basic "+basic("nix", token))
		}
		code, _ := p.request(t, http.MethodPut, "/nix-cache-info", strings.NewReader("StoreDir: /nix/store\n"), h)
		return code
	}
	if code := put(sec.push); code/100 != 2 {
		t.Errorf("PUT with the Secret's push token: %d", code)
	}
	if code := put("wrong"); code != http.StatusUnauthorized {
		t.Errorf("PUT with a wrong token: %d, want 401", code)
	}
	if code, body := p.request(t, http.MethodGet, "/_cached/stats", nil, http.Header{"Authorization": {"Bearer " + sec.admin}}); code != http.StatusOK {
		t.Errorf("/_cached/stats with the Secret's admin token: %d %s", code, body)
	}
	if a := d.Spec.Template.Annotations; a["prometheus.io/scrape"] == "true" {
		if body := p.get(t, a["prometheus.io/path"], http.StatusOK); !strings.Contains(body, "# TYPE cached_") {
			t.Errorf("the scrape annotations point at %s, which serves no cached metrics", a["prometheus.io/path"])
		}
	}
	out := p.Stdout.String()
	if strings.Contains(out, "push token") || strings.Contains(out, "generated signing key") {
		t.Errorf("cached generated a key or token instead of using the Secret's:\n%s", out)
	}
	dataDir, _ := envVar(c, "CACHED_DATA_DIR")
	if _, err := os.Stat(filepath.Join(root, dataDir.Value, "cached.db")); err != nil {
		t.Errorf("the SQLite catalog is not on the data volume: %v", err)
	}
	p.stop(t)
	if ents, err := os.ReadDir(cmd.Dir); err != nil || len(ents) > 0 {
		t.Errorf("cached wrote to its working directory (read-only in the pod): %v %v", ents, err)
	}
}

// basic is the credential of an HTTP Basic Authorization header.
func basic(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// TestPlaceholdersRefused checks that the committed placeholder secrets can
// never serve: cached refuses to start on each, saying which.
func TestPlaceholdersRefused(t *testing.T) {
	sec := newSecrets(t)
	blobs := t.TempDir() // written by the pod's user
	for p, mode := range map[string]os.FileMode{filepath.Dir(blobs): 0o755, blobs: 0o777} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	merge := func(keys ...string) (string, map[string]string) {
		body := "secretGenerator:\n  - name: cached-secrets\n    behavior: merge\n    files:\n"
		files := map[string]string{}
		for _, k := range keys {
			body += "      - " + k + "\n"
			files[k] = sec.files[k]
		}
		return body, files
	}
	tests := []struct {
		name, of string
		fill     []string // cached-secrets keys filled in
		backends string   // cached-backends as env lines, "" to keep the placeholders
		code     int
		want     string
	}{
		{"base as committed", "base", nil, "", 1, "REPLACE-ME"},
		{"base token placeholders", "base", []string{"signing-key"}, "", 1, "holds no token"},
		{"base admin token placeholder", "base", []string{"signing-key", "push-tokens"}, "", 1, "admin-tokens"},
		{"base push token placeholder", "base", []string{"signing-key", "admin-tokens"}, "", 1, "push-tokens"},
		{"ha backends as committed", "overlays/ha", []string{"signing-key", "push-tokens", "admin-tokens"}, "", 2, "--storage"},
		{"ha database placeholder", "overlays/ha", []string{"signing-key", "push-tokens", "admin-tokens"},
			"storage=file://" + blobs + "\naws-access-key-id=x\naws-secret-access-key=y\n", 2, "--database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, files := merge(tc.fill...)
			if tc.backends != "" {
				body += "  - name: cached-backends\n    behavior: merge\n    envs:\n      - backends.env\n"
				files["backends.env"] = tc.backends
			}
			m := build(t, operatorOverlay(t, tc.of, body, files))
			cmd, _ := simulatePod(t, m)
			code, stderr := refusal(t, cmd)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.code, tc.want)
			}
			if strings.Contains(stderr, "PASSWORD") {
				t.Errorf("the error quotes the database URL, password included: %s", stderr)
			}
		})
	}
}
