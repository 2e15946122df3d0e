package client

import (
	"strings"
	"testing"
)

func TestMergeConf(t *testing.T) {
	const url = "http://cache.example:8080"
	for _, c := range []struct {
		name, in, want string
		added          int
	}{
		{"empty", "", "extra-substituters = " + url + "\n", 1},
		{"no final newline", "sandbox = false", "sandbox = false\nextra-substituters = " + url + "\n", 1},
		{"appends to the existing line, keeps the rest",
			"# mine\nextra-substituters = https://a.example # a comment\nsubstituters = https://cache.nixos.org\n",
			"# mine\nextra-substituters = https://a.example " + url + "\nsubstituters = https://cache.nixos.org\n", 1},
		{"already in extra-substituters", "extra-substituters = " + url + "\n", "extra-substituters = " + url + "\n", 0},
		{"already in substituters", "substituters = https://cache.nixos.org " + url + "\n", "substituters = https://cache.nixos.org " + url + "\n", 0},
		{"only trusted is not enabled", "trusted-substituters = " + url + "\n", "trusted-substituters = " + url + "\nextra-substituters = " + url + "\n", 1},
	} {
		got, ch := MergeConf(c.in, "extra-substituters", []string{url})
		if got != c.want || len(ch.Added) != c.added {
			t.Errorf("%s: got %q (%v), want %q", c.name, got, ch.Added, c.want)
		}
		// Merging twice changes nothing more.
		if again, ch := MergeConf(got, "extra-substituters", []string{url}); again != got || len(ch.Added) != 0 {
			t.Errorf("%s: not idempotent: %q", c.name, again)
		}
	}
	got, _ := MergeConf("extra-trusted-public-keys = a:1\n", "extra-trusted-public-keys", []string{"a:1", "b:2", "c:3"})
	if got != "extra-trusted-public-keys = a:1 b:2 c:3\n" {
		t.Errorf("keys: %q", got)
	}
	if v, ok := ConfValue("netrc-file = /a\n# netrc-file = /b\nnetrc-file = /c # x\n", "netrc-file"); !ok || v != "/c" {
		t.Errorf("ConfValue: %q %v", v, ok)
	}
}

func TestFindConfFiles(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if c := FindConfFiles(get, "/home/u"); c.System != "/etc/nix/nix.conf" || c.User != "/home/u/.config/nix/nix.conf" {
		t.Errorf("defaults: %+v", c)
	}
	env["NIX_CONF_DIR"], env["XDG_CONFIG_HOME"] = "/opt/nix", "/cfg"
	if c := FindConfFiles(get, "/home/u"); c.System != "/opt/nix/nix.conf" || c.User != "/cfg/nix/nix.conf" {
		t.Errorf("NIX_CONF_DIR, XDG_CONFIG_HOME: %+v", c)
	}
	env["NIX_USER_CONF_FILES"] = "/a/nix.conf:/b/nix.conf"
	if c := FindConfFiles(get, "/home/u"); c.User != "/a/nix.conf" {
		t.Errorf("NIX_USER_CONF_FILES: %+v", c)
	}
}

func TestNetrc(t *testing.T) {
	in := "# work\nmachine a.example login x password old-a\nmachine cache.example\n  login cached\n  password old\ndefault login d password dflt\n"
	got, changed := MergeNetrc(in, "cache.example", "new")
	want := "# work\nmachine a.example login x password old-a\nmachine cache.example login cached password new\ndefault login d password dflt\n"
	if got != want || !changed {
		t.Errorf("replace: %q", got)
	}
	if again, changed := MergeNetrc(got, "cache.example", "new"); again != got || changed {
		t.Errorf("not idempotent: %q", again)
	}
	if got, _ := MergeNetrc("machine a password b", "c", "d"); got != "machine a password b\nmachine c login cached password d\n" {
		t.Errorf("append: %q", got)
	}
	for machine, want := range map[string]string{"cache.example": "old", "a.example": "old-a", "other": "dflt"} {
		if p := NetrcPassword(in, machine); p != want {
			t.Errorf("NetrcPassword(%s) = %q, want %q", machine, p, want)
		}
	}
	if p := NetrcPassword("machinex.example password no\n", "x.example"); p != "" || !strings.Contains(in, "old") {
		t.Errorf("a token that only starts with machine: %q", p)
	}
}

// Without XDG_CONFIG_HOME and a home directory nothing is recorded: not a
// file relative to the working directory.
func TestStateFileNeedsAHome(t *testing.T) {
	none := func(string) string { return "" }
	if got := StateFile(none, ""); got != "" {
		t.Errorf("StateFile with no home: %q, want none", got)
	}
	if got := StateFile(none, "/root"); got != "/root/.config/cached/client.conf" {
		t.Errorf("StateFile with a home: %q", got)
	}
	if u, err := DefaultURL(""); u != "" || err != nil {
		t.Errorf("DefaultURL without a state file: %q, %v", u, err)
	}
}
