package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNarInfoChanged is returned by ReplaceNarInfo when the path's narinfo
// is no longer the one the caller read: a push (or another re-signer)
// replaced it in between, and the caller must read it again.
var ErrNarInfoChanged = errors.New("catalog: narinfo changed since it was read")

// StoredNarInfo is a published path's rendered narinfo, as NarInfosAfter
// lists them.
type StoredNarInfo struct {
	HashPart string
	NarInfo  string
}

// ResignState is the progress of the background re-signing of narinfos
// (key rollover): a pass checks every published path and rewrites the
// narinfos that are not signed by exactly the Target key set. One record
// per catalog, written by the process that runs the pass.
type ResignState struct {
	// Target identifies the key set the pass works toward: the current
	// public keys and the retired key names (resign.Fingerprint).
	Target   string
	KeyNames []string // names of the keys that sign, for people
	Retired  []string // key names whose signatures are removed
	Holder   string   // the process that last saved the record
	// Cursor is the hash part of the last path checked: every path that
	// sorts at or before it was checked ("" before the first).
	Cursor    string
	Checked   int64 // paths the pass's walk checked so far
	Rewritten int64 // narinfos the pass rewrote (a stop may lose a page's count)
	Total     int64 // published paths when the pass started
	// Seq is a position in the change log (Changes): the pass must also
	// check the paths changed after it, which its walk may have missed.
	Seq       int64
	Started   time.Time // when the pass started
	Updated   time.Time // when the record was last saved
	Completed time.Time // when the pass ended; zero while it runs
}

// EncodeNames is how the implementations store ResignState's lists of
// key names: a JSON array, "[]" for none.
func EncodeNames(names []string) string {
	if len(names) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(names) // strings always encode
	return string(b)
}

// DecodeNames reads back a list stored with EncodeNames (nil for none).
func DecodeNames(s string) ([]string, error) {
	var names []string
	if err := json.Unmarshal([]byte(s), &names); err != nil {
		return nil, fmt.Errorf("key names %q: %w", s, err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	return names, nil
}

// OptionalMillis is Millis for a time that may be zero: 0 stands for the
// zero time.
func OptionalMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromOptionalMillis reads back a time stored with OptionalMillis.
func FromOptionalMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return FromMillis(ms)
}

// ResignStateColumns are the columns of the implementations' resign_state
// row, in the order of ResignState.Values and ScanResignState.
const ResignStateColumns = `target, key_names, retired, holder, cursor, checked, rewritten, total, seq,
	started, updated, completed`

// Values are s's column values, in the order of ResignStateColumns.
func (s ResignState) Values() []any {
	return []any{s.Target, EncodeNames(s.KeyNames), EncodeNames(s.Retired), s.Holder, s.Cursor,
		s.Checked, s.Rewritten, s.Total, s.Seq, OptionalMillis(s.Started), OptionalMillis(s.Updated),
		OptionalMillis(s.Completed)}
}

// ScanResignState reads a row of ResignStateColumns with scan (a row's
// Scan); scan's own error is returned as is.
func ScanResignState(scan func(dest ...any) error) (ResignState, error) {
	var s ResignState
	var names, retired string
	var started, updated, completed int64
	if err := scan(&s.Target, &names, &retired, &s.Holder, &s.Cursor, &s.Checked, &s.Rewritten, &s.Total,
		&s.Seq, &started, &updated, &completed); err != nil {
		return ResignState{}, err
	}
	var err error
	if s.KeyNames, err = DecodeNames(names); err != nil {
		return ResignState{}, err
	}
	if s.Retired, err = DecodeNames(retired); err != nil {
		return ResignState{}, err
	}
	s.Started, s.Updated, s.Completed = FromOptionalMillis(started), FromOptionalMillis(updated), FromOptionalMillis(completed)
	return s, nil
}
