package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/realisation"
	"github.com/nix-cached/cached/signing"
)

// realisationPUT finds the realisation upload in a request log: Nix 2.8
// sends the id's "!" as it is, 2.34 as %21.
var realisationPUT = regexp.MustCompile(`method=PUT path=/realisations/(sha256:[0-9a-f]{64})(?:!|%21)(\w+)\.doi status=204`)

// TestRealisations pushes a content-addressed derivation's output with
// each client: the realisation Nix uploads is served signed by the cache's
// key, as Nix signs realisations, and a client that has only the
// derivation gets the output back through it, building nothing.
func TestRealisations(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"})
		ca := "experimental-features = nix-command ca-derivations"
		f := filepath.Join(t.TempDir(), "ca.nix")
		writeFile(t, f, `derivation { name = "ca-`+nixtest.Nonce()+`"; system = builtins.currentSystem; builder = "/bin/sh"; `+
			`PATH = "/usr/bin:/bin"; args = [ "-c" "echo content-addressed > $out" ]; `+
			`__contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; }`)
		builder := nix.New(t, ca)
		out := strings.TrimSpace(builder.Run("nix-build", "--no-out-link", f))
		nix.New(t, ca, "netrc-file = "+netrc(t, srv.Token)).Run("nix", "copy", "--to", srv.URL, "-f", f)

		m := realisationPUT.FindStringSubmatch(srv.Stderr.String())
		if m == nil {
			t.Fatalf("no realisation was uploaded:\n%s", srv.Stderr)
		}
		id := m[1] + "!" + m[2]
		code, body := srv.get("/realisations/"+id+".doi", "")
		if code != 200 {
			t.Fatalf("GET realisation %s: %d", id, code)
		}
		r, err := realisation.ParseLegacy(id, []byte(body))
		if err != nil || "/nix/store/"+r.OutPath != out {
			t.Fatalf("served realisation %s (%v), want the output %s", body, err, out)
		}
		pub, err := signing.ParsePublicKey(srv.Pub)
		if err != nil {
			t.Fatal(err)
		}
		for _, fp := range r.Fingerprints() {
			if ok, err := signing.VerifyAny([]signing.PublicKey{pub}, fp, r.Sigs); !ok || err != nil {
				t.Errorf("realisation %s is not signed by %s over %s: %v", body, srv.Pub, fp, err)
			}
		}

		// The output goes; the derivation stays. Building it again
		// substitutes the output through the realisation.
		builder.Run("nix-store", "--delete", out)
		user := nix.New(t, ca, "substituters = "+srv.URL, "trusted-public-keys = "+srv.Pub)
		_, log, err := user.Try("nix-build", "--no-out-link", f)
		if err != nil {
			t.Fatalf("building the derivation again: %v\n%s", err, log)
		}
		if strings.Contains(log, "building '") || !strings.Contains(log, "copying path '"+out+"' from '"+srv.URL) {
			t.Errorf("the output was not substituted through its realisation:\n%s", log)
		}
		if got := readFile(t, nix.HostPath(out)); got != "content-addressed\n" {
			t.Errorf("%s holds %q", out, got)
		}
	})
}
