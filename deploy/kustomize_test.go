package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nix-cached/cached/internal/testtool"
)

// kustomizeBin finds kustomize: $CACHED_KUSTOMIZE, then PATH, then where
// scripts/test-deps builds it. Without it the test skips, or fails when
// CACHED_REQUIRE_KUSTOMIZE=1.
func kustomizeBin(t *testing.T) string {
	t.Helper()
	return testtool.Find(t, "KUSTOMIZE", "kustomize not found ($CACHED_KUSTOMIZE, PATH, ~/.cache/cached-ci/bin); scripts/test-deps builds it",
		"kustomize", testtool.CIBin("kustomize"))
}

// kustomizeBuild runs `kustomize build dir`.
func kustomizeBuild(t *testing.T, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kustomizeBin(t), "build", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	if stderr.Len() > 0 {
		// Deprecation warnings: the next kustomize may refuse the file.
		t.Errorf("kustomize build %s warned:\n%s", dir, stderr.String())
	}
	return out
}

// manifests are the typed objects of one kustomize build.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	secrets     []*corev1.Secret
	pvcs        []*corev1.PersistentVolumeClaim
	configMaps  []*corev1.ConfigMap
	pdbs        []*policyv1.PodDisruptionBudget
}

// allowedKinds are the only objects the manifests may hold.
var allowedKinds = map[schema.GroupVersionKind]bool{
	appsv1.SchemeGroupVersion.WithKind("Deployment"):            true,
	corev1.SchemeGroupVersion.WithKind("Service"):               true,
	corev1.SchemeGroupVersion.WithKind("Secret"):                true,
	corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"): true,
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):             true,
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"): true,
}

// strictDecoder decodes YAML into typed objects with apimachinery's strict
// serializer: unknown, duplicate and wrongly cased fields are errors.
func strictDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(), nil
}

// decodeManifests splits a multi-document YAML stream and decodes every
// document strictly into its Kubernetes type.
func decodeManifests(stream []byte) (*manifests, error) {
	dec, err := strictDecoder()
	if err != nil {
		return nil, err
	}
	m := &manifests{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if !allowedKinds[*gvk] {
			return nil, fmt.Errorf("document %d: unexpected kind %s", i, gvk)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *corev1.Secret:
			m.secrets = append(m.secrets, o)
		case *corev1.PersistentVolumeClaim:
			m.pvcs = append(m.pvcs, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		default:
			return nil, fmt.Errorf("document %d: %s decoded as %T", i, gvk, obj)
		}
	}
	return m, nil
}

// build runs kustomize on dir and decodes the result strictly.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	m, err := decodeManifests(kustomizeBuild(t, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return m
}

// variants are the kustomizations in deploy/kubernetes.
var variants = []string{"base", "overlays/ha"}

func TestKustomizeBuildsStrictly(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			m := build(t, filepath.Join("kubernetes", v))
			if len(m.deployments) != 1 || len(m.services) != 1 {
				t.Fatalf("want one Deployment and one Service, have %d and %d", len(m.deployments), len(m.services))
			}
		})
	}
}

func TestDecodeManifestsRejects(t *testing.T) {
	const good = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n"
	if m, err := decodeManifests([]byte(good + "---\n" + good)); err != nil || len(m.services) != 2 {
		t.Fatalf("good input: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":   good + "  portz: 1\n",
		"wrong case":      strings.Replace(good, "ports:", "Ports:", 1),
		"duplicate field": good + "  ports: []\n",
		"wrong type":      strings.Replace(good, "port: 80", "port: eighty", 1),
		"unknown kind":    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
		"unknown group":   "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: a\n",
		"no kind":         "apiVersion: v1\nmetadata:\n  name: a\n",
		"not yaml":        "apiVersion: v1\nkind: Service\nmetadata: {name: [\n",
	} {
		if _, err := decodeManifests([]byte(good + "---\n" + doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
