package client

import (
	"strings"
)

// MergeNetrc sets the password for machine in netrc text: an entry for
// that machine is replaced, every other one kept as it was. It returns
// the new text and whether it changed.
func MergeNetrc(text, machine, password string) (string, bool) {
	entry := "machine " + machine + " login cached password " + password + "\n"
	var out []string
	replaced := false
	for _, e := range splitNetrc(text) {
		f := strings.Fields(e)
		if len(f) >= 2 && f[0] == "machine" && f[1] == machine {
			if !replaced {
				out = append(out, entry)
				replaced = true
			}
			continue
		}
		out = append(out, e)
	}
	if !replaced {
		if n := len(out); n > 0 && !strings.HasSuffix(out[n-1], "\n") {
			out[n-1] += "\n"
		}
		out = append(out, entry)
	}
	merged := strings.Join(out, "")
	return merged, merged != text
}

// NetrcPassword returns the password netrc text gives machine, as curl
// reads it: the first entry for the machine, or "default".
func NetrcPassword(text, machine string) string {
	var dflt string
	for _, e := range splitNetrc(text) {
		f := strings.Fields(e)
		isDefault := len(f) >= 1 && f[0] == "default"
		if !isDefault && (len(f) < 2 || f[0] != "machine" || f[1] != machine) {
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "password" {
				if !isDefault {
					return f[i+1]
				}
				if dflt == "" {
					dflt = f[i+1]
				}
			}
		}
	}
	return dflt
}

// splitNetrc cuts netrc text into entries, each starting at a "machine"
// or "default" token (a "macdef" body is not understood, and stays with
// its entry). An entry whose token starts a line takes the whole line, so
// that comments above it stay with the entry before. Concatenated, the
// entries are the text.
func splitNetrc(text string) []string {
	var entries []string
	start, i := 0, 0
	for i < len(text) {
		j := i
		for j < len(text) && !isSpace(text[j]) {
			j++
		}
		if w := text[i:j]; j > i && (w == "machine" || w == "default") && i > start {
			cut := i
			if nl := strings.LastIndexByte(text[start:i], '\n'); nl >= 0 && strings.TrimSpace(text[start+nl+1:i]) == "" {
				cut = start + nl + 1
			}
			if cut > start {
				entries = append(entries, text[start:cut])
				start = cut
			}
		}
		for j < len(text) && isSpace(text[j]) {
			j++
		}
		i = j
	}
	if start < len(text) {
		entries = append(entries, text[start:])
	}
	return entries
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
