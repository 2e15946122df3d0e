package deploy

import (
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// parseQuota reads a --max-size value as cached does: powers of 1024.
func parseQuota(t *testing.T, s string) int64 {
	t.Helper()
	re := regexp.MustCompile(`^([0-9.]+)([KMGTP]?)(i?B)?$`)
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("CACHED_MAX_SIZE=%q: not a size", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(v * float64(int64(1)<<(10*(1+strings.Index("KMGTP", m[2])))))
}

func TestBase(t *testing.T) {
	m := build(t, filepath.Join("kubernetes", "base"))
	img := loadDockerfile(t)
	checkCommon(t, m, img)
	d, c := theDeployment(t, m)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v strategy %s: SQLite has one writer, want 1 and Recreate", deref(d.Spec.Replicas), d.Spec.Strategy.Type)
	}
	for _, name := range []string{"CACHED_DATABASE", "CACHED_STORAGE"} {
		if _, ok := envVar(c, name); ok {
			t.Errorf("%s is set: base keeps the catalog and blobs in the data directory", name)
		}
	}
	dataDir, _ := envVar(c, "CACHED_DATA_DIR")
	mnt, _ := mountFor(c, dataDir.Value)
	vol, ok := volume(&d.Spec.Template.Spec, mnt.Name)
	if !ok || vol.PersistentVolumeClaim == nil {
		t.Fatalf("the data directory %s is not on a PersistentVolumeClaim", dataDir.Value)
	}
	if len(m.pvcs) != 1 || m.pvcs[0].Name != vol.PersistentVolumeClaim.ClaimName {
		t.Fatalf("PersistentVolumeClaim %s is not in the manifests", vol.PersistentVolumeClaim.ClaimName)
	}
	pvc := m.pvcs[0]
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC access modes %v, want ReadWriteOnce", pvc.Spec.AccessModes)
	}
	size := pvc.Spec.Resources.Requests.Storage()
	quota, ok := envVar(c, "CACHED_MAX_SIZE")
	if !ok {
		t.Fatal("CACHED_MAX_SIZE is not set: nothing keeps the cache from filling its volume")
	}
	// Listings, logs and the database are outside the quota: leave 10%.
	if q := parseQuota(t, quota.Value); q > size.Value()*9/10 {
		t.Errorf("CACHED_MAX_SIZE=%s (%d bytes) is not well below the volume's %s", quota.Value, q, size)
	}
}

func TestHA(t *testing.T) {
	m := build(t, filepath.Join("kubernetes", "overlays", "ha"))
	img := loadDockerfile(t)
	checkCommon(t, m, img)
	d, c := theDeployment(t, m)
	spec := &d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	ru := d.Spec.Strategy.RollingUpdate
	if replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || ru.MaxUnavailable.String() != "0" || ru.MaxSurge == nil || ru.MaxSurge.String() != "1" {
		t.Errorf("replicas %d strategy %+v: want 3, RollingUpdate with maxUnavailable 0 and maxSurge 1", replicas, d.Spec.Strategy)
	}
	if len(m.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, have %d", len(m.pdbs))
	}
	pdb := m.pdbs[0]
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.String() != "2" {
		t.Errorf("PDB minAvailable %v, want 2", pdb.Spec.MinAvailable)
	}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("PDB selector does not select the pods (%v)", err)
	}
	if len(m.pvcs) != 0 {
		t.Errorf("PersistentVolumeClaims %v: replicas on several nodes cannot share a ReadWriteOnce volume", m.pvcs)
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			t.Errorf("volume %s is a PersistentVolumeClaim", v.Name)
		}
	}
	dataDir, _ := envVar(c, "CACHED_DATA_DIR")
	mnt, _ := mountFor(c, dataDir.Value)
	if vol, ok := volume(spec, mnt.Name); !ok || vol.EmptyDir == nil {
		t.Errorf("the data directory %s is not an emptyDir", dataDir.Value)
	}
	for _, name := range []string{"CACHED_DATABASE", "CACHED_STORAGE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		e, ok := envVar(c, name)
		if !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s: want it from a Secret", name)
		}
	}
	spread := false
	for _, tsc := range spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err == nil && sel.Matches(podLabels) && tsc.TopologyKey == corev1.LabelHostname && tsc.MaxSkew == 1 {
			spread = true
		}
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
			spread = spread || err == nil && sel.Matches(podLabels) && term.TopologyKey == corev1.LabelHostname
		}
	}
	if !spread {
		t.Errorf("the replicas are not spread over nodes (topologySpreadConstraints or podAntiAffinity on %s)", corev1.LabelHostname)
	}
}

// TestSecretPlaceholders checks that no committed secret file holds a
// usable value: each says REPLACE-ME.
func TestSecretPlaceholders(t *testing.T) {
	for _, v := range variants {
		m := build(t, filepath.Join("kubernetes", v))
		for _, s := range m.secrets {
			for k, val := range s.Data {
				if !strings.Contains(string(val), "REPLACE-ME") {
					t.Errorf("%s: Secret %s key %s holds a value that is not a placeholder", path.Base(v), s.Name, k)
				}
			}
		}
	}
}
