package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	e := newEnv(t, false)
	e.push(pathA, "held")
	body := []byte(`{"hashes":["` + pathA[:32] + `","` + pathB[:32] + `"]}`)
	e.do("POST", "/_cached/lookup", "", body).expect(t, 401, "lookup without a token")
	e.do("POST", "/_cached/lookup", readToken, body).expect(t, 403, "lookup with a read token")
	r := e.do("POST", "/_cached/lookup", pushToken, body).expect(t, 200, "lookup")
	var got lookupResponse
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	served := e.do("GET", "/"+pathA[:32]+".narinfo", pushToken, nil).expect(t, 200, "narinfo").body
	if len(got.NarInfos) != 1 || got.NarInfos[pathA[:32]] != served {
		t.Errorf("lookup answered %v, want only %s with its narinfo as served", got.NarInfos, pathA[:32])
	}
	e.do("POST", "/_cached/lookup", pushToken, []byte(`{"hashes":["../etc"]}`)).expect(t, 400, "bad hash")
	e.do("POST", "/_cached/lookup", pushToken, []byte(`nope`)).expect(t, 400, "not JSON")
	many := `{"hashes":["` + strings.Repeat(pathB[:32]+`","`, maxLookup) + pathB[:32] + `"]}`
	e.do("POST", "/_cached/lookup", pushToken, []byte(many)).expect(t, 400, "too many hashes")
}

func TestAddPin(t *testing.T) {
	e := newEnv(t, true)
	e.push(pathA, "pinned")
	pin := func(body string) string { return `{"name":"release","storePath":"/nix/store/` + body }
	e.do("POST", "/_cached/pins", readToken, []byte(pin(pathA+`"}`))).expect(t, 401, "pin with a read token (not a token of this public cache)")
	e.do("POST", "/_cached/pins", pushToken, []byte(pin(pathB+`"}`))).expect(t, 404, "pin of a path not in the cache")
	e.do("POST", "/_cached/pins", pushToken, []byte(pin(pathA+`","expires":"soon"}`))).expect(t, 400, "bad expiry")
	e.do("POST", "/_cached/pins", pushToken, []byte(`{"name":"","storePath":"/nix/store/`+pathA+`"}`)).expect(t, 400, "no name")
	e.do("POST", "/_cached/pins", pushToken, []byte(`{"name":"x","storePath":"/elsewhere/`+pathA+`"}`)).expect(t, 400, "another store")
	e.do("POST", "/_cached/pins", pushToken, []byte(pin(pathA+`","keep":2,"expires":"24h"}`))).expect(t, 204, "pin")
	pins, err := e.cat.Pins(context.Background())
	if err != nil || len(pins) != 1 || pins[0].Name != "release" || pins[0].HashPart != pathA[:32] || pins[0].ExpiresAt.IsZero() {
		t.Fatalf("pins %+v, %v", pins, err)
	}
}
