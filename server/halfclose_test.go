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

// putHalfClosed sends a whole PUT over a raw connection, then closes its
// own side for writing, as some proxies and clients do, and returns the
// status the server answered.
func (e *env) putHalfClosed(path string, body []byte) int {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	auth := base64.StdEncoding.EncodeToString([]byte("nix:" + pushToken))
	head := "PUT " + path + " HTTP/1.1\r\nHost: cache\r\nAuthorization: Basic " + auth +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		e.t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("PUT %s: no answer after a half-close: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUploadHalfClosed uploads a path whose PUTs end with a half-close:
// each upload arrived whole, so it is stored and answered 2xx; a 2xx is
// never sent for anything that was not stored.
func TestUploadHalfClosed(t *testing.T) {
	e := newEnv(t, true)
	for i, base := range []string{pathA, pathB} {
		p := e.prepare(base, "half-closed "+strconv.Itoa(i))
		nar := e.putHalfClosed("/nar/"+p.xzName, p.file)
		ni := e.putHalfClosed("/"+base[:32]+".narinfo", []byte(p.narinfo.String()))
		served := e.do("GET", "/"+base[:32]+".narinfo", "", nil).code
		if nar/100 != 2 || ni/100 != 2 || served != 200 {
			t.Errorf("%s: NAR PUT %d, narinfo PUT %d, then GET narinfo %d: want stored and 2xx", base, nar, ni, served)
		}
	}
	// A truncated body followed by a half-close is refused, not 2xx.
	p := e.prepare(pathC, "truncated")
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := base64.StdEncoding.EncodeToString([]byte("nix:" + pushToken))
	conn.Write([]byte("PUT /nar/" + p.xzName + " HTTP/1.1\r\nHost: cache\r\nAuthorization: Basic " + auth +
		"\r\nContent-Length: " + strconv.Itoa(len(p.file)) + "\r\n\r\n"))
	conn.Write(p.file[:len(p.file)/2])
	conn.(*net.TCPConn).CloseWrite()
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil && resp.StatusCode/100 == 2 {
		t.Errorf("a truncated NAR PUT was answered %d", resp.StatusCode)
	}
}
