package server

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// putHalfClosed sends a PUT over a raw connection, declaring length bytes
// and sending body (all of it, or less), then closes its own side for
// writing, as some proxies and clients do, and reads the server's answer.
func (e *env) putHalfClosed(path string, length int, body []byte) (*http.Response, error) {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	auth := base64.StdEncoding.EncodeToString([]byte("nix:" + pushToken))
	head := "PUT " + path + " HTTP/1.1\r\nHost: cache\r\nAuthorization: Basic " + auth +
		"\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		e.t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// status is the status of a response to a whole PUT; no answer fails t.
func (e *env) status(resp *http.Response, err error) int {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("no answer after a half-close: %v", err)
	}
	return resp.StatusCode
}

// TestUploadHalfClosed uploads a path whose PUTs end with a half-close:
// each upload arrived whole, so it is stored and answered 2xx; a 2xx is
// never sent for anything that was not stored.
func TestUploadHalfClosed(t *testing.T) {
	e := newEnv(t, true)
	for i, base := range []string{pathA, pathB} {
		p := e.prepare(base, "half-closed "+strconv.Itoa(i))
		nar := e.status(e.putHalfClosed("/nar/"+p.xzName, len(p.file), p.file))
		ni := e.status(e.putHalfClosed("/"+base[:32]+".narinfo", len(p.narinfo.String()), []byte(p.narinfo.String())))
		served := e.do("GET", "/"+base[:32]+".narinfo", "", nil).code
		if nar/100 != 2 || ni/100 != 2 || served != 200 {
			t.Errorf("%s: NAR PUT %d, narinfo PUT %d, then GET narinfo %d: want stored and 2xx", base, nar, ni, served)
		}
	}
	// A truncated body followed by a half-close is refused, not 2xx.
	p := e.prepare(pathC, "truncated")
	if resp, err := e.putHalfClosed("/nar/"+p.xzName, len(p.file), p.file[:len(p.file)/2]); err == nil && resp.StatusCode/100 == 2 {
		t.Errorf("a truncated NAR PUT was answered %d", resp.StatusCode)
	}
}
