package web

import (
	"embed"
	"fmt"
	"html/template"
	"strconv"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

// funcs are the helpers the templates format numbers, times and links with.
var funcs = template.FuncMap{
	"bytes":   humanBytes,
	"count":   count,
	"count64": func(n int64) string { return count(int(n)) },
	"time":    formatTime,
	"iso":     isoTime,
	"pathURL": storePathURL,
	"prefix":  func() string { return Prefix },
	"took":    took,
}

// parse returns the template set of one page: the layout and the page's
// own file, which defines "content".
func parse(page string) *template.Template {
	return template.Must(template.New(page).Funcs(funcs).
		ParseFS(templateFiles, "templates/layout.html", "templates/"+page))
}

// The pages' templates.
var (
	indexTmpl = parse("index.html")
	pathsTmpl = parse("paths.html")
	pathTmpl  = parse("path.html")
	pinsTmpl  = parse("pins.html")
	gcTmpl    = parse("gc.html")
	errorTmpl = parse("error.html")
)

// humanBytes formats n bytes with a binary unit: "512 B", "1.5 KiB",
// "23.4 GiB".
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for (v >= 1024 || v <= -1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v >= 100 || v <= -100 {
		return fmt.Sprintf("%.0f %ciB", v, units[i])
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

// count formats an integer with thin groups of three digits: 1,234,567.
func count(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// formatTime shows a time in UTC to the second; the zero time is "never".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// isoTime is the datetime attribute of a <time> element.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
