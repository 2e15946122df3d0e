package main

import (
	"flag"
	"fmt"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/resign"
	"github.com/nix-cached/cached/signing"
)

// resignFlags are serve's settings of key rollover: which key names are
// retired, and how fast narinfos are re-signed when the keys change.
type resignFlags struct {
	rate    float64
	retired listFlag
}

func addResignFlags(fs *flag.FlagSet) *resignFlags {
	f := &resignFlags{}
	fs.Float64Var(&f.rate, "resign-rate", resign.DefaultRate, "when the signing keys change, re-sign published narinfos in the background at this many `paths` per second (0 turns re-signing off)")
	fs.Var(&f.retired, "retired-key", "key `name` whose signatures are removed from every narinfo, once clients trust the keys that replace it (repeatable)")
	return f
}

// check refuses a retired name that is also a signing key's, and a
// negative rate.
func (f *resignFlags) check(keys []signing.SecretKey) error {
	if f.rate < 0 {
		return fmt.Errorf("%w: --resign-rate %v is negative", errUsage, f.rate)
	}
	for _, k := range keys {
		if slices.Contains(f.retired.vals, k.Name()) {
			return fmt.Errorf("%w: --retired-key %s names a key that still signs (--signing-key-file): remove its file, or do not retire it", errUsage, k.Name())
		}
	}
	for _, name := range f.retired.vals {
		if _, err := signing.GenerateKey(name, zeroes{}); err != nil {
			return fmt.Errorf("%w: --retired-key %q is not a key name: %v", errUsage, name, err)
		}
	}
	return nil
}

// zeroes is an endless source of zero bytes, enough to check a key name
// by making a throwaway key under it.
type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// resigner returns the background re-signer of b's narinfos, and
// registers its metrics with reg; nil when re-signing is off.
func (f *resignFlags) resigner(b *backend, ing *ingest.Ingester, keys []signing.SecretKey, reg prometheus.Registerer, log *slog.Logger) (*resign.Resigner, error) {
	if f.rate == 0 {
		return nil, nil
	}
	pubs := make([]signing.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.Public()
	}
	r, err := resign.New(b.cat, ing, resign.Options{Keys: pubs, Retired: f.retired.vals, Rate: f.rate, Logger: log})
	if err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cached_resign_paths_total",
			Help: "Published narinfos this server checked against its signing keys and retired key names (key rollover)."},
			func() float64 { return float64(r.Stats().Checked) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cached_resign_rewritten_total",
			Help: "Narinfos this server re-signed: a current key's signature added or made again, or a retired key's removed."},
			func() float64 { return float64(r.Stats().Rewritten) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cached_resign_pending_paths",
			Help: "Paths the re-signing pass toward this server's key set has yet to check (0 once it is complete)."},
			func() float64 { return float64(r.Stats().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cached_resign_complete",
			Help: "1 once every narinfo was checked against this server's key set, 0 while a pass is under way or another configuration's runs."},
			func() float64 {
				if r.Stats().Done {
					return 1
				}
				return 0
			}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return r, nil
}
