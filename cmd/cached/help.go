package main

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
)

// usageFlags makes -h print a command's usage (its synopsis, "usage:
// cached ...", and what it does) and then its own flags.
func usageFlags(fs *flag.FlagSet, usage string) {
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), strings.TrimRight(usage, "\n"))
		printFlags(fs)
	}
}

// printFlags lists fs's flags as --name VALUE, with their defaults in the
// form they are written (365d, 32MiB).
func printFlags(fs *flag.FlagSet) {
	var n int
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	w := fs.Output()
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name == "value" {
			switch f.Value.(type) {
			case durationFlag:
				name = "duration"
			case sizeFlag:
				name = "size"
			default:
				name = "value"
			}
		}
		head := "  --" + f.Name
		if name != "" {
			head += " " + strings.ToUpper(name)
		}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && !strings.Contains(usage, "(default") {
			usage += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintf(w, "%s\n      %s\n", head, usage)
	})
}

// helpArg reports whether arg asks for help.
func helpArg(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// A subcommand of a command group (token, pin, path).
type subcommand struct {
	name, synopsis string
}

// groupUsage is the -h text of a command group.
func groupUsage(group, what string, subs []subcommand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, s := range subs {
		fmt.Fprintln(tw, "  "+strings.TrimSpace(fmt.Sprintf("cached %s %s %s", group, s.name, s.synopsis)))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\n%s\n\ncached %s SUBCOMMAND -h lists the flags of a subcommand.\n", what, group)
	return b.String()
}

// groupCommand returns the subcommand args name, or an error: a usage
// error naming the subcommands, or flag.ErrHelp after printing help.
func groupCommand(stdout io.Writer, group, what string, subs []subcommand, args []string) (string, error) {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	want := strings.Join(names, ", ")
	switch {
	case len(args) == 0:
		return "", fmt.Errorf("%w: cached %s needs a subcommand: %s (cached %s -h)", errUsage, group, want, group)
	case helpArg(args[0]):
		fmt.Fprint(stdout, groupUsage(group, what, subs))
		return "", flag.ErrHelp
	case !slices.Contains(names, args[0]):
		return "", fmt.Errorf("%w: cached %s: unknown subcommand %q (want %s)", errUsage, group, args[0], want)
	}
	return args[0], nil
}

// subUsage is the usage text of one subcommand of a group.
func subUsage(group string, subs []subcommand, name, what string) string {
	for _, s := range subs {
		if s.name == name {
			return strings.TrimSpace(fmt.Sprintf("usage: cached %s %s %s", group, name, s.synopsis)) + "\n\n" + what
		}
	}
	return ""
}

// flagError turns the flag package's error for a value it could not parse
// ("invalid value "abc" for flag -priority: parse error") into one that
// says what was expected.
func flagError(fs *flag.FlagSet, err error) error {
	m := invalidValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f := fs.Lookup(m[2])
	if f == nil {
		return err
	}
	return fmt.Errorf("--%s %s: %s", f.Name, m[1], valueError(f, m[3]))
}

var invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for flag -(\S+): (.*)$`)

// valueError explains a value f refused: what it wants, when the flag
// package's own reason ("parse error") does not say.
func valueError(f *flag.Flag, reason string) string {
	if reason != "parse error" && reason != "value out of range" {
		return reason
	}
	want := ""
	switch reflect.TypeOf(f.Value).String() {
	case "*flag.intValue", "*flag.int64Value":
		want = "want a whole number"
	case "*flag.uintValue", "*flag.uint64Value":
		want = "want a whole number, 0 or more"
	case "*flag.boolValue":
		want = "want true or false"
	case "*flag.float64Value":
		want = "want a number"
	case "*flag.durationValue":
		want = "want a duration such as 90s, 5m or 2h"
	default:
		return reason
	}
	if reason == "parse error" {
		return want
	}
	return reason + ": " + want
}

// version is the module version and VCS revision the binary was built
// from, as the Go toolchain records them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "cached (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	out := "cached " + v
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		out += "\nrevision " + rev
		if t := settings["vcs.time"]; t != "" {
			out += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			out += ", with uncommitted changes"
		}
	}
	return out + "\n" + bi.GoVersion + " " + settings["GOOS"] + "/" + settings["GOARCH"]
}

// toolEnv are CACHED_* variables that are not settings: the test suite's
// and the proxy-container kit's.
var toolEnv = []string{"CACHED_BIN", "CACHED_URL", "CACHED_CHROMIUM", "CACHED_KUSTOMIZE", "CACHED_MINIO",
	"CACHED_NGINX", "CACHED_SYSTEMD_ANALYZE", "CACHED_NIX_SID_ROOT", "CACHED_SID_MIRROR", "CACHED_CI_BIN", "CACHED_PG_BIN", "CACHED_PGTEST_HELPER"}

// warnUnknownEnv warns about CACHED_* variables in env that name no
// setting of any command (a misspelt CACHED_PRIORTY would otherwise be
// ignored without a word), suggesting the closest setting.
func warnUnknownEnv(w io.Writer, env []string) {
	known := settingNames()
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CACHED_") || strings.HasPrefix(name, "CACHED_REQUIRE_") || slices.Contains(toolEnv, name) {
			continue
		}
		setting := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "CACHED_"), "_", "-"))
		if known[setting] {
			continue
		}
		hint := ""
		if near := closest(setting, known); near != "" {
			hint = fmt.Sprintf("; did you mean %s?", envName(near))
		}
		fmt.Fprintf(w, "cached: warning: %s is not a setting of any cached command, and is ignored%s\n", name, hint)
	}
}

// settingNames are the flags of every command, as settings (CACHED_*
// variables, config file names).
func settingNames() map[string]bool {
	names := map[string]bool{"config": true}
	add := func(fs *flag.FlagSet) { fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true }) }
	fs, _ := newServeFlags()
	add(fs)
	for _, more := range settingsOutsideServe {
		names[more] = true
	}
	return names
}

// settingsOutsideServe are the flags of commands other than serve that
// serve does not have (TestSettingNames checks every command's -h
// against settingNames).
var settingsOutsideServe = []string{
	"dry-run", "json", "contents", "force", "name", "scope", "keep", "expires",
	"token", "token-file", "public-key", "post-build-hook", "nix-conf", "netrc", "to", "store", "stdin", "pin", "timeout",
	"mirror-retention", "params", "limit",
}

// closest returns the known name within two edits of name, if any.
func closest(name string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
