package client

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestLookupRetriedOnClosedConnection has a server (or a proxy before it)
// close a kept-alive connection as the lookup arrives on it, as one does
// when its idle timeout strikes at that moment: the lookup, a query, is
// sent again on a new connection instead of failing with EOF.
func TestLookupRetriedOnClosedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan int, 4)
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- n
			go serveClosing(c, n == 1)
		}
	}()
	c, err := NewCache("http://"+ln.Addr().String(), "token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(t.Context()); err != nil {
		t.Fatalf("Info: %v", err)
	}
	held, err := c.Lookup(t.Context(), []string{"0123456789abcdfghijklmnpqrsvwxyz"})
	if err != nil {
		t.Fatalf("Lookup on a connection closed under it: %v", err)
	}
	if len(held) != 0 {
		t.Errorf("Lookup = %v, want nothing held", held)
	}
	if len(conns) != 2 {
		t.Errorf("%d connections, want 2 (the closed one, then a new one)", len(conns))
	}
}

// serveClosing answers every request on c; with closeSecond it reads the
// second request whole and then closes c without an answer.
func serveClosing(c net.Conn, closeSecond bool) {
	defer c.Close()
	r := bufio.NewReader(c)
	for i := 1; ; i++ {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body) //nolint:errcheck // the body is not needed
		if closeSecond && i == 2 {
			return
		}
		body := "StoreDir: /nix/store\n"
		ctype := "text/x-nix-cache-info"
		if req.Method == http.MethodPost {
			body, ctype = `{"narinfos":{}}`, "application/json"
		}
		resp := http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {ctype}}, ContentLength: int64(len(body)),
			Body: io.NopCloser(strings.NewReader(body))}
		if err := resp.Write(c); err != nil {
			return
		}
	}
}
