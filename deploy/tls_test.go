package deploy

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nix-cached/cached/internal/testca"
)

// TestTLSPod runs the base Deployment with the tls component, as
// deploy/README.md tells operators to add it, and a cached-tls Secret:
// the container serves HTTPS with HTTP/2 on its port, its probes ask over
// HTTPS and pass, and the metrics annotations say https.
func TestTLSPod(t *testing.T) {
	sec := newSecrets(t)
	dir := t.TempDir()
	ca := testca.New(t)
	ca.Issue(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	for _, f := range []string{"tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sec.files[f] = string(b)
	}
	body := strings.Replace(replaceSecrets, "secretGenerator:\n", "secretGenerator:\n"+
		"  - name: cached-tls\n    type: kubernetes.io/tls\n    files:\n      - tls.crt\n      - tls.key\n", 1) +
		"components:\n  - $KUBERNETES/components/tls\n"
	m := build(t, operatorOverlay(t, "base", body, sec.files))
	checkCommon(t, m, loadDockerfile(t))
	d, c := theDeployment(t, m)
	if d.Spec.Template.Annotations["prometheus.io/scheme"] != "https" {
		t.Errorf("prometheus.io/scheme %q, want https", d.Spec.Template.Annotations["prometheus.io/scheme"])
	}
	for _, name := range []string{"CACHED_TLS_CERT_FILE", "CACHED_TLS_KEY_FILE"} {
		e, ok := envVar(c, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		if mnt, ok := mountFor(c, e.Value); !ok || mnt.SubPath != "" {
			t.Errorf("%s=%s is not in a directory mount (a subPath mount never sees a renewed Secret)", name, e.Value)
		}
	}

	cmd, _ := simulatePod(t, m)
	p := start(t, cmd)
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("serving %s, want https://", p.URL)
	}
	p.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
	probes := 0
	for _, probe := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			continue
		}
		probes++
		if probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe of %s asks over %q, want HTTPS", probe.HTTPGet.Path, probe.HTTPGet.Scheme)
		}
		p.get(t, probe.HTTPGet.Path, http.StatusOK)
	}
	if probes == 0 {
		t.Error("no HTTP probe")
	}
	resp, err := p.client.Get(p.URL + "/nix-cache-info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("served over %s, want HTTP/2.0", resp.Proto)
	}
	p.stop(t)
}
