package nixtest

import (
	"strings"
	"testing"
)

func TestBuildClosure(t *testing.T) {
	c := New(t)
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
}
