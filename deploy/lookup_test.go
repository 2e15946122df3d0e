package deploy

import (
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var (
	flagsOnce sync.Once
	flagNames map[string]bool
)

var flagLine = regexp.MustCompile(`(?m)^  --?([a-z0-9][a-z0-9-]*)`)

// serveFlags returns the flag names of `cached serve`, read from the
// binary's own -h output.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin := cachedBinary(t)
	flagsOnce.Do(func() {
		out, err := exec.Command(bin, "serve", "-h").CombinedOutput()
		if err != nil {
			t.Fatalf("cached serve -h: %v\n%s", err, out)
		}
		names := map[string]bool{}
		for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
			names[m[1]] = true
		}
		flagNames = names
	})
	if !flagNames["listen"] || !flagNames["data-dir"] {
		t.Fatalf("cached serve -h lists no --listen or --data-dir: the parser is out of date (%v)", flagNames)
	}
	return flagNames
}

// flagOf is the flag that a CACHED_* variable sets: CACHED_DATA_DIR is
// --data-dir.
func flagOf(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "CACHED_")), "_", "-")
}

// theDeployment returns the only Deployment and its only container.
func theDeployment(t *testing.T, m *manifests) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	if len(m.deployments) != 1 {
		t.Fatalf("want one Deployment, have %d", len(m.deployments))
	}
	d := m.deployments[0]
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(d.Spec.Template.Spec.Containers))
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

// envVar returns the container's variable name.
func envVar(c *corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// containerPort resolves a probe or Service port against the container.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// mountFor returns the volume mount that holds the absolute path p.
func mountFor(c *corev1.Container, p string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

// volume returns the pod's volume name.
func volume(spec *corev1.PodSpec, name string) (*corev1.Volume, bool) {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i], true
		}
	}
	return nil, false
}

// secret returns the generated Secret name.
func (m *manifests) secret(name string) (*corev1.Secret, bool) {
	for _, s := range m.secrets {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
