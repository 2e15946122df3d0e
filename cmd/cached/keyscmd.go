package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// keysCommands are the subcommands of cached keys.
var keysCommands = []subcommand{
	{"status", "[--json]"},
	{"generate", "NAME SECRET_FILE PUBLIC_FILE"},
}

const keysWhat = `Signing keys and their rollover. cached serve keeps every narinfo signed by
exactly its current keys (--signing-key-file, repeatable): when they change,
a background pass (--resign-rate paths a second) adds the new keys'
signatures and removes those of the key names given with --retired-key,
keeping other signatures (clients', upstreams'). It resumes after a
restart, and one replica runs it at a time. To roll a key over:

  1. cached keys generate NEW-NAME new.sk new.pk, and restart serve with both
     keys (--signing-key-file old.sk --signing-key-file new.sk); wait until
     cached keys status says the pass is complete.
  2. Make clients trust the new public key (extra-trusted-public-keys, or
     cached use again; /public-key lists the keys that sign).
  3. Restart serve with the new key only and --retired-key OLD-NAME; once the
     pass is complete, no narinfo carries the old key's signature.

A key that only stops signing, without --retired-key, keeps its signatures:
clients that still trust it go on accepting the paths.`

// runKeys shows the state of key rollover and makes key pairs.
func runKeys(ctx context.Context, args []string, stdout io.Writer) error {
	sub, err := groupCommand(stdout, "keys", keysWhat, keysCommands, args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	var data *dataFlags
	var asJSON *bool
	switch sub {
	case "status":
		usageFlags(fs, subUsage("keys", keysCommands, sub, `Shows the re-signing of narinfos toward the keys the servers sign with: the
key names, the retired names, and the pass's progress (paths checked of the
paths published when it began, narinfos rewritten) or its completion.`))
		data = addDataFlags(fs)
		asJSON = fs.Bool("json", false, "print the state as JSON")
	case "generate":
		usageFlags(fs, subUsage("keys", keysCommands, sub, `Makes a signing key pair, as cached keygen and nix-store
--generate-binary-cache-key do: NAME is the key's name (e.g. cache.example-2),
SECRET_FILE and PUBLIC_FILE must not exist.`))
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	wantArgs := map[string]int{"status": 0, "generate": 3}[sub]
	if fs.NArg() != wantArgs {
		return fmt.Errorf("%w: %s", errUsage, strings.TrimPrefix(subUsage("keys", keysCommands, sub, ""), "usage: "))
	}
	if sub == "generate" {
		return runKeygen(fs.Args(), stdout)
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	defer b.Close()
	st, err := b.cat.ResignState(ctx)
	if errors.Is(err, catalog.ErrNotFound) {
		if *asJSON {
			return writeJSON(stdout, struct{}{})
		}
		fmt.Fprintln(stdout, "no re-signing yet: no server with re-signing on has started on this cache")
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, statusJSON(st))
	}
	return writeStatus(stdout, st)
}

// resignStatus is the JSON form of catalog.ResignState.
type resignStatus struct {
	Target    string     `json:"target"`
	Keys      []string   `json:"keys"`
	Retired   []string   `json:"retired"`
	Complete  bool       `json:"complete"`
	Checked   int64      `json:"checked"`
	Total     int64      `json:"total"`
	Rewritten int64      `json:"rewritten"`
	Holder    string     `json:"holder"`
	Started   time.Time  `json:"started"`
	Updated   time.Time  `json:"updated"`
	Completed *time.Time `json:"completed,omitempty"`
}

func statusJSON(st catalog.ResignState) resignStatus {
	s := resignStatus{Target: st.Target, Keys: st.KeyNames, Retired: st.Retired, Complete: !st.Completed.IsZero(),
		Checked: st.Checked, Total: st.Total, Rewritten: st.Rewritten, Holder: st.Holder,
		Started: st.Started.UTC(), Updated: st.Updated.UTC()}
	if s.Keys == nil {
		s.Keys = []string{}
	}
	if s.Retired == nil {
		s.Retired = []string{}
	}
	if s.Complete {
		c := st.Completed.UTC()
		s.Completed = &c
	}
	return s
}

// writeStatus prints the state of re-signing for people.
func writeStatus(w io.Writer, st catalog.ResignState) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	none := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, " ")
	}
	fmt.Fprintf(tw, "keys:\t%s\n", none(st.KeyNames))
	fmt.Fprintf(tw, "retired:\t%s\n", none(st.Retired))
	done := min(st.Checked, st.Total)
	pct := 100.0
	if st.Total > 0 {
		pct = 100 * float64(done) / float64(st.Total)
	}
	if st.Completed.IsZero() {
		fmt.Fprintf(tw, "pass:\tin progress: %d of %d paths checked (%.0f%%), %d narinfos rewritten\n", done, st.Total, pct, st.Rewritten)
		fmt.Fprintf(tw, "\tstarted %s, last progress %s by %s (it goes on while a server with these keys runs)\n",
			st.Started.UTC().Format(time.RFC3339), st.Updated.UTC().Format(time.RFC3339), st.Holder)
	} else {
		fmt.Fprintf(tw, "pass:\tcomplete: %d paths checked, %d narinfos rewritten\n", st.Checked, st.Rewritten)
		fmt.Fprintf(tw, "\tstarted %s, completed %s (took %s) by %s\n", st.Started.UTC().Format(time.RFC3339),
			st.Completed.UTC().Format(time.RFC3339), st.Completed.Sub(st.Started).Round(time.Second), st.Holder)
	}
	return tw.Flush()
}
