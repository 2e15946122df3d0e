package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// listFlag is a flag that may be repeated or given as a comma-separated
// list. Each configuration source (file, environment, command line)
// replaces what earlier sources set; repeats within one source add up.
type listFlag struct {
	vals  []string
	fresh bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(v string) error {
	if l.fresh {
		l.vals, l.fresh = nil, false
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l.vals = append(l.vals, s)
		}
	}
	return nil
}

// envName is the environment variable of a flag: CACHED_ and the flag's
// name in upper case with dashes as underscores.
func envName(flagName string) string {
	return "CACHED_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags fills fs from, in increasing precedence: the defaults, a
// config file (--config or CACHED_CONFIG; lines "name = value", '#'
// comments), CACHED_* environment variables, and the command line.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.String("config", "", "read settings from this `file` (lines \"name = value\")")
	newSource := func() {
		fs.VisitAll(func(f *flag.Flag) {
			if l, ok := f.Value.(*listFlag); ok {
				l.fresh = true
			}
		})
	}
	path := configArg(args)
	if path == "" {
		path = os.Getenv(envName("config"))
	}
	if path != "" {
		newSource()
		if err := applyConfigFile(fs, path); err != nil {
			return err
		}
	}
	newSource()
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && f.Name != "config" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %s", errUsage, envName(f.Name), v, valueError(f, err.Error()))
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	newSource()
	// Flags may follow arguments (`cached pin add NAME PATH --keep 3`):
	// parse, take one argument, parse the rest, and so on.
	// The flag package prints a bad flag's error and the usage itself:
	// the error is returned instead, once, and -h prints the usage.
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(helpOutput)
				fs.Usage()
				return err
			}
			return fmt.Errorf("%w: %v (cached %s -h lists its flags)", errUsage, flagError(fs, err), fs.Name())
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// configArg finds --config on the command line before flags are parsed.
func configArg(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// applyConfigFile sets flags from a file of "name = value" lines.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	return applyConfig(fs, f, path)
}

func applyConfig(fs *flag.FlagSet, r io.Reader, path string) error {
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, val, ok := strings.Cut(text, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" {
			return fmt.Errorf("%w: %s:%d: want `name = value`", errUsage, path, line)
		}
		if name == "config" || fs.Lookup(name) == nil {
			return fmt.Errorf("%w: %s:%d: unknown setting %q", errUsage, path, line, name)
		}
		if err := fs.Set(name, val); err != nil {
			return fmt.Errorf("%w: %s:%d: %s = %q: %s", errUsage, path, line, name, val, valueError(fs.Lookup(name), err.Error()))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// helpOutput is where -h prints: the command's standard output.
var helpOutput io.Writer = os.Stdout

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")
