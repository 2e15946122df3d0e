package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
		"m/0010_c.sql": {Data: []byte("C")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Name+"="+m.SQL)
	}
	if strings.Join(got, " ") != "0001_a.sql=A 0002_b.sql=B 0010_c.sql=C" {
		t.Fatalf("Load = %v", got)
	}
	for _, bad := range []fstest.MapFS{
		{"m/x.sql": {}},
		{"m/0001_a.sql": {}, "m/1_b.sql": {}},
		{"m/0_zero.sql": {}},
		{},
	} {
		if _, err := Load(bad, "m"); err == nil {
			t.Errorf("Load(%v) succeeded", bad)
		}
	}
}
