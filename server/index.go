package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/web"
)

const typeHTML = "text/html; charset=utf-8"

// The headers of GET /, set directly (the keys are canonical). The page
// reflects the request's Host and X-Forwarded-Proto, so no cache may keep
// it; it comes in two forms, chosen by Accept. The Host is part of every
// cache key already. The HTML form sets its own (package web).
var (
	indexVary    = []string{"Accept, X-Forwarded-Proto"}
	indexNoStore = []string{"no-store"}
	indexNoSniff = []string{"nosniff"}
)

// hostPlaceholder stands for the cache's host when the request's Host
// header is missing or is not a host[:port].
const hostPlaceholder = "<host>"

// indexPage is what GET / tells a client: the nix.conf lines, the netrc
// line and the commands, for the URL the client used.
type indexPage struct {
	URL         string // scheme://host[:port] as the client reached the cache
	Machine     string // the netrc machine name: the host without port or brackets
	UnknownHost bool   // the Host header was unusable: URL and Machine hold hostPlaceholder
	Keys        string // every public key, separated by spaces; "" when there is none
	Private     bool   // reads need a token
	StorePath   string // an example store path for nix copy
}

// index shows how to use the cache: as plain text for curl, or as a
// self-contained HTML page when the client prefers HTML (a browser), with
// a summary of the cache and a search box for a visitor who may read it.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	p := s.indexPage(r)
	h := w.Header()
	h["Vary"] = indexVary
	h["Cache-Control"] = indexNoStore
	h["X-Content-Type-Options"] = indexNoSniff
	if !prefersHTML(r.Header.Get("Accept")) {
		writeSmall(w, r, typeText, p.text())
		return
	}
	// Reads are public, or this request carries a token that reads.
	browse := s.auth.Check(r.Context(), r, catalog.ScopeRead) == nil
	noteError(w, s.ui.ServeIndex(w, r, web.Index{
		URL: p.URL, Machine: p.Machine, UnknownHost: p.UnknownHost, Keys: p.Keys,
		Private: p.Private, StorePath: p.StorePath, Browse: browse,
	}))
}

// indexPage builds the page's contents for r.
func (s *Server) indexPage(r *http.Request) indexPage {
	scheme := "http"
	if r.TLS != nil || forwardedHTTPS(r.Header.Get("X-Forwarded-Proto")) {
		scheme = "https"
	}
	p := indexPage{Private: s.private, StorePath: s.cfg.StoreDir + "/…-hello"}
	if machine, ok := hostMachine(r.Host); ok {
		p.URL, p.Machine = scheme+"://"+r.Host, machine
	} else {
		p.URL, p.Machine, p.UnknownHost = scheme+"://"+hostPlaceholder, hostPlaceholder, true
	}
	switch len(s.cfg.PublicKeys) {
	case 0:
	case 1:
		p.Keys = s.cfg.PublicKeys[0].String()
	default:
		var b strings.Builder
		for i, k := range s.cfg.PublicKeys {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(k.String())
		}
		p.Keys = b.String()
	}
	return p
}

// forwardedHTTPS reports whether an X-Forwarded-Proto value says the
// client spoke HTTPS. A chain of proxies appends to the list: the first
// entry is the client's.
func forwardedHTTPS(v string) bool {
	first, _, _ := strings.Cut(v, ",")
	return strings.EqualFold(strings.TrimSpace(first), "https")
}

// hostMachine checks a Host header, which the client controls, and returns
// the host name as netrc names it (no port, no brackets). It accepts only a
// DNS name, an IPv4 address or a bracketed IPv6 address without zone, each
// with an optional port.
func hostMachine(hostport string) (string, bool) {
	if hostport == "" || len(hostport) > 300 {
		return "", false
	}
	host, port := hostport, ""
	if hostport[0] == '[' {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", false
		}
		host, port = hostport[1:end], hostport[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", false
			}
			port = port[1:]
			if !validPort(port) {
				return "", false
			}
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", false
		}
		return host, true
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if !validPort(port) {
			return "", false
		}
	}
	return host, validHostName(host)
}

// validPort reports whether p is a decimal port number from 1 to 65535.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(p)
	return err == nil && n <= 65535
}

// validHostName reports whether h is a DNS name (or an IPv4 address):
// dot-separated labels of letters, digits, '-' and '_', none empty, none
// longer than 63 bytes or starting or ending with '-'.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// prefersHTML reports whether an Accept header ranks text/html above
// text/plain, as browsers' do. curl's "*/*", no header, or a header that
// names neither gets plain text.
func prefersHTML(accept string) bool {
	if accept == "" {
		return false
	}
	return acceptQuality(accept, "html") > acceptQuality(accept, "plain")
}

// acceptQuality returns the quality that accept gives text/sub: that of
// its most specific matching range (text/sub, then text/*, then */*), or
// 0 when none matches.
func acceptQuality(accept, sub string) float64 {
	best, q := 0, 0.0
	for rest := accept; rest != ""; {
		var item string
		item, rest, _ = strings.Cut(rest, ",")
		mediaRange, params, _ := strings.Cut(item, ";")
		typ, subtype, ok := strings.Cut(strings.TrimSpace(mediaRange), "/")
		if !ok {
			continue
		}
		specificity := 0
		switch {
		case typ == "*" && subtype == "*":
			specificity = 1
		case !strings.EqualFold(typ, "text"):
		case subtype == "*":
			specificity = 2
		case strings.EqualFold(subtype, sub):
			specificity = 3
		}
		if specificity <= best {
			continue
		}
		best, q = specificity, rangeQuality(params)
	}
	return q
}

// rangeQuality returns the q parameter among a media range's parameters
// (1 when there is none, 0 when it is malformed).
func rangeQuality(params string) float64 {
	for rest := params; rest != ""; {
		var param string
		param, rest, _ = strings.Cut(rest, ";")
		name, value, _ := strings.Cut(param, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}

// text is the plain-text form of the page: prose, and the lines to paste
// on lines of their own.
func (p indexPage) text() string {
	var b strings.Builder
	b.Grow(1536)
	w := func(parts ...string) {
		for _, s := range parts {
			b.WriteString(s)
		}
		b.WriteByte('\n')
	}
	w("cached: a Nix binary cache at ", p.URL)
	if p.UnknownHost {
		w()
		w("The request named no usable host: replace ", hostPlaceholder, " below with this")
		w("cache's host and port.")
	}
	w()
	w("The easiest way to use it: run this on the client. It writes the")
	w("nix.conf lines below for you.")
	w()
	w("cached use ", p.URL)
	w()
	w("Or add these lines to /etc/nix/nix.conf yourself, then restart nix-daemon:")
	w()
	w("extra-substituters = ", p.URL)
	if p.Keys != "" {
		w("extra-trusted-public-keys = ", p.Keys)
	}
	w()
	if p.Private {
		w("This cache is private: reading needs a token too. Every reader needs this")
		w("line, with a read token, in /etc/nix/netrc (or the file that netrc-file")
		w("names in nix.conf):")
		w()
		w("machine ", p.Machine, " password <read token>")
		w()
		w("To push, use a push token in that line instead (it reads too):")
	} else {
		w("To push, put this line, with a push token, in /etc/nix/netrc (or the")
		w("file that netrc-file names in nix.conf):")
	}
	w()
	w("machine ", p.Machine, " password <push token>")
	w()
	w("then copy store paths to the cache:")
	w()
	w("nix copy --to ", p.URL, " ", p.StorePath)
	return b.String()
}
