package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// drainSeconds is how long `cached serve` finishes requests in flight
// after SIGTERM (cmd/cached/serve.go).
const drainSeconds = 30

// checkCommon checks what every variant must get right.
func checkCommon(t *testing.T, m *manifests, img imageFacts) {
	t.Helper()
	d, c := theDeployment(t, m)
	spec := &d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)

	// The image: its entrypoint and command, as the Dockerfile sets them.
	if len(c.Command) > 0 && !slices.Equal(c.Command, img.entrypoint) {
		t.Errorf("command %q overrides the image's ENTRYPOINT %q", c.Command, img.entrypoint)
	}
	if args := c.Args; len(args) > 0 && !slices.Equal(args, img.cmd) || len(args) == 0 && !slices.Equal(img.cmd, []string{"serve"}) {
		t.Errorf("args %q: the container must run `cached serve` (image CMD %q)", args, img.cmd)
	}
	if !strings.Contains(c.Image, "/") || !strings.Contains(c.Image, ":") {
		t.Errorf("image %q: want REGISTRY/NAME:TAG (set it in the kustomization's images)", c.Image)
	}

	// Settings: every CACHED_* variable is a real flag of `cached serve`.
	flags := serveFlags(t)
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("env %s is set twice", e.Name)
		}
		seen[e.Name] = true
		if strings.HasPrefix(e.Name, "CACHED_") && !flags[flagOf(e.Name)] {
			t.Errorf("env %s: `cached serve` has no --%s", e.Name, flagOf(e.Name))
		}
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			s, ok := m.secret(ref.SecretKeyRef.Name)
			if !ok {
				t.Errorf("env %s: no Secret %s", e.Name, ref.SecretKeyRef.Name)
			} else if _, ok := s.Data[ref.SecretKeyRef.Key]; !ok {
				t.Errorf("env %s: Secret %s has no key %s", e.Name, s.Name, ref.SecretKeyRef.Key)
			}
		}
	}
	listen, _ := envVar(c, "CACHED_LISTEN")
	var port int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			port = p.ContainerPort
		}
	}
	if port != img.port || listen.Value != ":"+strconv.Itoa(int(port)) {
		t.Errorf("CACHED_LISTEN=%q, port http %d, image EXPOSE %d: want all three to agree", listen.Value, port, img.port)
	}
	dataDir, _ := envVar(c, "CACHED_DATA_DIR")
	if dataDir.Value != img.volume {
		t.Errorf("CACHED_DATA_DIR=%q, want the image's VOLUME %s", dataDir.Value, img.volume)
	}
	if mnt, ok := mountFor(c, dataDir.Value); !ok || mnt.MountPath != dataDir.Value || mnt.ReadOnly {
		t.Errorf("the data directory %s is not a writable volume mount", dataDir.Value)
	}
	// Files named by settings exist in the Secret mounted there; every
	// replica must sign with the same key and accept the same tokens.
	for _, name := range []string{"CACHED_SIGNING_KEY_FILE", "CACHED_PUSH_TOKEN_FILE", "CACHED_ADMIN_TOKEN_FILE", "CACHED_READ_TOKEN_FILE"} {
		e, ok := envVar(c, name)
		if !ok {
			if name == "CACHED_SIGNING_KEY_FILE" || name == "CACHED_PUSH_TOKEN_FILE" {
				t.Errorf("%s is not set: cached would generate one per pod", name)
			}
			continue
		}
		mnt, ok := mountFor(c, e.Value)
		vol, _ := volume(spec, mnt.Name)
		if !ok || vol == nil || vol.Secret == nil || !mnt.ReadOnly {
			t.Errorf("%s=%s is not in a read-only Secret mount", name, e.Value)
			continue
		}
		s, ok := m.secret(vol.Secret.SecretName)
		key := strings.TrimPrefix(e.Value, strings.TrimSuffix(mnt.MountPath, "/")+"/")
		if !ok || s.Data[key] == nil {
			t.Errorf("%s=%s: Secret %s has no key %s", name, e.Value, vol.Secret.SecretName, key)
		}
	}

	// Probes on the container port.
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		if p.probe == nil {
			if p.what != "startupProbe" {
				t.Errorf("no %s", p.what)
			}
			continue
		}
		g := p.probe.HTTPGet
		if g == nil || g.Path != p.path {
			t.Errorf("%s: want GET %s", p.what, p.path)
			continue
		}
		if n, ok := containerPort(c, g.Port); !ok || n != port {
			t.Errorf("%s: port %v is not the container's http port %d", p.what, g.Port.String(), port)
		}
	}
	if a := d.Spec.Template.Annotations; a["prometheus.io/port"] != "" && a["prometheus.io/port"] != strconv.Itoa(int(port)) {
		t.Errorf("prometheus.io/port %s, container port %d", a["prometheus.io/port"], port)
	}

	// Security.
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("no pod or container securityContext")
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	if nonRoot == nil || !*nonRoot || uid == nil || *uid != img.uid {
		t.Errorf("runAsNonRoot %v runAsUser %v, want true and the image's USER %d", deref(nonRoot), deref(uid), img.uid)
	}
	if psc.FSGroup == nil || *psc.FSGroup != img.gid {
		t.Errorf("fsGroup %v, want %d so the data volume is writable", deref(psc.FSGroup), img.gid)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %v, want RuntimeDefault", seccomp)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Privileged != nil && *sc.Privileged {
		t.Errorf("container securityContext: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, not privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("capabilities %v: want drop ALL, add none", sc.Capabilities)
	}
	if tmp, ok := mountFor(c, "/tmp/x"); !ok || tmp.ReadOnly {
		t.Errorf("no writable /tmp under a read-only root filesystem")
	}
	// The Service is named cached: its links would be CACHED_* variables.
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Errorf("enableServiceLinks must be false: CACHED_SERVICE_HOST, CACHED_PORT, … would reach cached's settings")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken: want false, cached does not use the API")
	}

	// Shutdown: the grace period covers preStop and the server's drain.
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	var preStop int64
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		preStop = l.PreStop.Sleep.Seconds
	}
	if grace < preStop+drainSeconds {
		t.Errorf("terminationGracePeriodSeconds %d < preStop %d s + drain %d s", grace, preStop, drainSeconds)
	}

	// Resources, from the measured peak RSS (80 MiB streaming 1 GiB on S3).
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Memory().Cmp(resource.MustParse("128Mi")) < 0 || lim.Memory().Cmp(resource.MustParse("256Mi")) < 0 ||
		req.Cpu().IsZero() || req.Memory().Cmp(*lim.Memory()) > 0 {
		t.Errorf("resources %v: want memory requests ≥ 128Mi and limits ≥ 256Mi, a cpu request", c.Resources)
	}
	if e, ok := envVar(c, "GOMEMLIMIT"); ok {
		q, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		if err != nil || q.Cmp(*lim.Memory()) >= 0 {
			t.Errorf("GOMEMLIMIT=%s must be below the memory limit %s", e.Value, lim.Memory())
		}
	}

	// The Service reaches the pods on the container port.
	if len(m.services) != 1 {
		t.Fatalf("want one Service, have %d", len(m.services))
	}
	svc := m.services[0]
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
		t.Fatalf("Service ports %v, want 80", svc.Spec.Ports)
	}
	if n, ok := containerPort(c, svc.Spec.Ports[0].TargetPort); !ok || n != port {
		t.Errorf("Service targetPort %s is not the container port %d", svc.Spec.Ports[0].TargetPort.String(), port)
	}
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector does not select its own pods: %v", err)
	}
}
