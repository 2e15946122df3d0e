// Package realisation reads and writes the realisations of content-
// addressed derivations (ca-derivations) that Nix keeps in binary caches,
// and the fingerprints their signatures cover, in both formats Nix uses:
//
//   - Legacy: realisations/<id>.doi, where the id is the derivation's hash
//     modulo and an output name, "sha256:<hex>!out". The document is
//     {"id", "outPath", "signatures": ["name:base64"…],
//     "dependentRealisations": {…}}. Nix 2.8 to 2.34 and Lix.
//   - Build trace: build-trace-v2/<drv>/<output>.doi, keyed by the
//     derivation's store path. The document is {"outPath", "signatures":
//     [{"keyName", "sig"}…]} and the key is in the URL. Nix 2.35 and later.
//
// A fingerprint is the document without its signatures, as compact JSON
// with sorted keys (what nlohmann::json's dump writes); a build trace's
// fingerprint is {"key": {"drvPath", "outputName"}, "value": {"outPath"}}.
package realisation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nix-cached/cached/storepath"
)

// ErrInvalid is wrapped by every error about a malformed id or document.
var ErrInvalid = errors.New("invalid realisation")

// Format is one of the two forms of realisation Nix writes.
type Format int

const (
	// Legacy is realisations/<sha256:hex!output>.doi (Nix ≤ 2.34, Lix).
	Legacy Format = iota
	// BuildTrace is build-trace-v2/<drv>/<output>.doi (Nix ≥ 2.35).
	BuildTrace
)

// Realisation is a parsed realisation document.
type Realisation struct {
	Format Format
	// ID is the legacy id ("sha256:<hex>!out"), or for a build trace
	// "<drv basename>^<output>", as Nix renders its key.
	ID string
	// DrvPath and Output are a build trace's key; empty for Legacy.
	DrvPath, Output string
	// OutPath is the output's store path basename.
	OutPath string
	// Sigs are the signatures, each "name:base64".
	Sigs []string
	// deps is a legacy document's dependentRealisations, as sent.
	deps map[string]string
}

// ValidateLegacyID checks a legacy id, "sha256:<64 hex>!<output>".
func ValidateLegacyID(id string) error {
	hash, out, ok := strings.Cut(id, "!")
	hex, isSHA := strings.CutPrefix(hash, "sha256:")
	if !ok || !isSHA || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: id %q is not sha256:<hex>!<output>", ErrInvalid, id)
	}
	if err := storepath.ValidateName(out); err != nil {
		return fmt.Errorf("%w: id %q: output name: %v", ErrInvalid, id, err)
	}
	return nil
}

// ValidateKey checks a build trace's key: a derivation's store path
// basename and an output name.
func ValidateKey(drvPath, output string) error {
	if _, err := storepath.ParseBase(drvPath); err != nil || !strings.HasSuffix(drvPath, ".drv") {
		return fmt.Errorf("%w: %q is not a derivation's store path", ErrInvalid, drvPath)
	}
	if err := storepath.ValidateName(output); err != nil {
		return fmt.Errorf("%w: output name %q: %v", ErrInvalid, output, err)
	}
	return nil
}

// legacyDoc and traceDoc are the two documents as JSON.
type legacyDoc struct {
	ID      string            `json:"id"`
	OutPath string            `json:"outPath"`
	Sigs    []json.RawMessage `json:"signatures"`
	Deps    map[string]string `json:"dependentRealisations"`
}

type traceDoc struct {
	OutPath string            `json:"outPath"`
	Sigs    []json.RawMessage `json:"signatures"`
}

// ParseLegacy parses a legacy document uploaded under id.
func ParseLegacy(id string, body []byte) (*Realisation, error) {
	if err := ValidateLegacyID(id); err != nil {
		return nil, err
	}
	var d legacyDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	if d.ID != id {
		return nil, fmt.Errorf("%w: document for %q uploaded as %q", ErrInvalid, d.ID, id)
	}
	for dep, out := range d.Deps {
		if err := ValidateLegacyID(dep); err != nil {
			return nil, err
		}
		if _, err := storepath.ParseBase(out); err != nil {
			return nil, fmt.Errorf("%w: dependent realisation %s: %v", ErrInvalid, dep, err)
		}
	}
	r := &Realisation{Format: Legacy, ID: id, deps: d.Deps}
	return r, r.fill(d.OutPath, d.Sigs)
}

// ParseBuildTrace parses a build trace document uploaded for the output
// named output of the derivation drvPath (a store path basename).
func ParseBuildTrace(drvPath, output string, body []byte) (*Realisation, error) {
	if err := ValidateKey(drvPath, output); err != nil {
		return nil, err
	}
	var d traceDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	r := &Realisation{Format: BuildTrace, ID: drvPath + "^" + output, DrvPath: drvPath, Output: output}
	return r, r.fill(d.OutPath, d.Sigs)
}

// fill checks and sets the output path and signatures. A signature is
// either "name:base64" or {"keyName", "sig"}; both parse in Nix 2.35.
func (r *Realisation) fill(outPath string, sigs []json.RawMessage) error {
	if _, err := storepath.ParseBase(outPath); err != nil {
		return fmt.Errorf("%w: outPath: %v", ErrInvalid, err)
	}
	r.OutPath = outPath
	for _, raw := range sigs {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var o struct {
				KeyName string `json:"keyName"`
				Sig     string `json:"sig"`
			}
			if err := json.Unmarshal(raw, &o); err != nil || o.KeyName == "" {
				return fmt.Errorf("%w: a signature is neither \"name:sig\" nor {keyName, sig}", ErrInvalid)
			}
			s = o.KeyName + ":" + o.Sig
		}
		r.Sigs = append(r.Sigs, s)
	}
	return nil
}

// Fingerprints returns what a signature of r covers, as Nix computes it.
// A legacy realisation with dependent realisations has two: Nix up to
// 2.2x fingerprints them, Nix 2.34 an empty set in their place; a
// signature of each lets every version check one. Otherwise there is one.
func (r *Realisation) Fingerprints() [][]byte {
	if r.Format == BuildTrace {
		fp := struct {
			Key struct {
				DrvPath    string `json:"drvPath"`
				OutputName string `json:"outputName"`
			} `json:"key"`
			Value struct {
				OutPath string `json:"outPath"`
			} `json:"value"`
		}{}
		fp.Key.DrvPath, fp.Key.OutputName, fp.Value.OutPath = r.DrvPath, r.Output, r.OutPath
		return [][]byte{compact(fp)}
	}
	fps := [][]byte{r.legacyFingerprint(map[string]string{})}
	if len(r.deps) > 0 {
		fps = append(fps, r.legacyFingerprint(r.deps))
	}
	return fps
}

func (r *Realisation) legacyFingerprint(deps map[string]string) []byte {
	return compact(struct {
		Deps    map[string]string `json:"dependentRealisations"`
		ID      string            `json:"id"`
		OutPath string            `json:"outPath"`
	}{deps, r.ID, r.OutPath})
}

// Marshal renders r with its signatures, in its format: the legacy form
// keeps its dependent realisations and writes signatures as strings; a
// build trace writes them as {keyName, sig}, as Nix 2.35 does.
func (r *Realisation) Marshal() []byte {
	if r.Format == BuildTrace {
		type sig struct {
			KeyName string `json:"keyName"`
			Sig     string `json:"sig"`
		}
		sigs := make([]sig, 0, len(r.Sigs))
		for _, s := range r.Sigs {
			name, b64, _ := strings.Cut(s, ":")
			sigs = append(sigs, sig{name, b64})
		}
		return compact(struct {
			OutPath string `json:"outPath"`
			Sigs    []sig  `json:"signatures"`
		}{r.OutPath, sigs})
	}
	deps := r.deps
	if deps == nil {
		deps = map[string]string{}
	}
	sigs := r.Sigs
	if sigs == nil {
		sigs = []string{}
	}
	return compact(struct {
		Deps    map[string]string `json:"dependentRealisations"`
		ID      string            `json:"id"`
		OutPath string            `json:"outPath"`
		Sigs    []string          `json:"signatures"`
	}{deps, r.ID, r.OutPath, sigs})
}

// compact is v as compact JSON without HTML escaping, as nlohmann::json
// dumps it. Struct fields are declared in sorted order and maps are sorted
// by encoding/json, so keys come out sorted; the values are store path
// names, hashes and base64, which need no escaping either way.
func compact(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("realisation: encoding %T: %v", v, err)) // strings and maps of strings always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
