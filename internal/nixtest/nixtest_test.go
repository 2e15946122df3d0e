package nixtest

import (
	"os"
	"strings"
	"testing"
)

// TestBuildClosure builds a two-path closure with every client and finds
// it in that client's store, seen from the host.
func TestBuildClosure(t *testing.T) {
	Each(t, func(t *testing.T, nix *Nix) {
		c := nix.New(t)
		n := Nonce()
		expr := `let a = ` + Derivation("a-"+n, `echo `+n+` > $out`) + `; in ` +
			Derivation("b-"+n, `mkdir $out; ln -s ${a} $out/a`)
		outs := c.Build(expr)
		if len(outs) != 1 || !strings.HasSuffix(outs[0], "-b-"+n) {
			t.Fatalf("outputs %v", outs)
		}
		cl := c.Closure(outs[0])
		if len(cl) != 2 || !strings.HasSuffix(cl[0], "-a-"+n) {
			t.Fatalf("closure %v", cl)
		}
		b, err := os.ReadFile(c.Path(cl[0]))
		if err != nil || string(b) != n+"\n" {
			t.Fatalf("%s on the host: %q, %v", cl[0], b, err)
		}
		if got := c.Run("nix", "--version"); !strings.Contains(got, nix.Version) {
			t.Fatalf("client %s says it is %q", nix.Name, got)
		}
	})
}

// TestClients finds both clients the suite runs: the host's Nix 2.8 and
// a current Nix in the sid root.
func TestClients(t *testing.T) {
	ns := Clients(t)
	names := []string{}
	for _, n := range ns {
		names = append(names, n.Name)
	}
	if os.Getenv("CACHED_REQUIRE_NIX") == "1" && (len(ns) != 2 || ns[0].Root != "" || !ns[1].AtLeast(2, 30)) {
		t.Fatalf("clients %v, want the host's and a Nix ≥ 2.30 in %s", names, SidRoot())
	}
	t.Logf("clients: %v", names)
}

// TestCPUs makes a client see 16 CPUs, whatever the machine has.
func TestCPUs(t *testing.T) {
	Each(t, func(t *testing.T, nix *Nix) {
		c := nix.New(t)
		c.CPUs = 16
		if got := strings.TrimSpace(c.Run("getconf", "_NPROCESSORS_ONLN")); got != "16" {
			t.Fatalf("the client sees %s CPUs, want 16", got)
		}
	})
}
