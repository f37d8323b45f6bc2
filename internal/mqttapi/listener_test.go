package mqttapi

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts as a process out of file
// descriptors does, then hands out real connections.
type flakyListener struct {
	net.Listener
	mu       sync.Mutex
	failures int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.failures > 0 {
		l.failures--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestListenerSurvivesFailedAccepts: accepts that fail (EMFILE) are retried
// with backoff, not the end of the endpoint, and the failure shows in
// FailingSince while it lasts.
func TestListenerSurvivesFailedAccepts(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: inner, failures: 5}
	server, client := listenerTLS(t)
	l := newTLSListener("test", fl, server, slog.New(slog.NewTextHandler(io.Discard, nil)), 8, 8, 8, time.Second)
	established := make(chan net.Conn, 1)
	go l.Serve(func(id string, c net.Conn) error { established <- c; return nil })
	defer l.Close(func(string) {})
	conn, err := tls.Dial("tcp", inner.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case c := <-established:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the listener stopped accepting after failed accepts")
	}
	if l.Stopped() || !l.FailingSince().IsZero() {
		t.Fatalf("after recovering: stopped %v, failing since %v", l.Stopped(), l.FailingSince())
	}
}

// TestListenerReportsFailingAccepts: while accepts fail, FailingSince says
// since when, which /readyz turns into 503 after a grace period.
func TestListenerReportsFailingAccepts(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: inner, failures: 1 << 30}
	l := newTLSListener("test", fl, &tls.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), 8, 8, 8, time.Second)
	go l.Serve(func(string, net.Conn) error { return nil })
	defer l.Close(func(string) {})
	deadline := time.Now().Add(5 * time.Second)
	for l.FailingSince().IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("failing accepts are not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := &Server{tls: l}
	if err := s.Ready(); err != nil {
		t.Fatalf("not ready within the grace period: %v", err)
	}
	l.failing.Store(time.Now().Add(-2 * acceptFailureGrace).UnixNano())
	if err := s.Ready(); err == nil {
		t.Fatal("ready although accepts have failed for longer than the grace period")
	}
}

// TestListenerBoundsConnections: at most maxPerSource connections of one
// address wait for admission; more are closed at once, and another address
// still gets in. Closing gives the room back.
func TestListenerBoundsConnections(t *testing.T) {
	addr, established, client := startListener(t, 100, 100, 3)
	connect := func(source string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// The broker gets a connection once its TLS handshake is done.
	dial := func(source string) net.Conn {
		t.Helper()
		c := tls.Client(connect(source), client)
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var held []net.Conn
	for range 3 {
		dial("127.0.0.2")
		held = append(held, <-established)
	}
	refused := connect("127.0.0.2")
	refused.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := refused.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a fourth pending connection from one address: read %v, want it closed", err)
	}
	dial("127.0.0.3")
	select {
	case c := <-established:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("another address was not accepted")
	}
	held[0].Close()
	dial("127.0.0.2")
	select {
	case <-established:
	case <-time.After(5 * time.Second):
		t.Fatal("a closed connection did not give its room back")
	}
}

// listenerTLS is a server configuration with a certificate and a client
// configuration that trusts it.
func listenerTLS(t *testing.T) (server, client *tls.Config) {
	p := newPKI(t)
	return &tls.Config{Certificates: []tls.Certificate{p.server}}, &tls.Config{RootCAs: p.roots, ServerName: "localhost"}
}

// startListener serves a TLS listener with the given bounds on a port of
// its own until the test ends; established gets the connections the broker
// would, and client trusts the listener's certificate.
func startListener(t *testing.T, maxConns, maxPending, maxPerSource int) (addr string, established chan net.Conn, client *tls.Config) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, client := listenerTLS(t)
	l := newTLSListener("test", inner, server, slog.New(slog.NewTextHandler(io.Discard, nil)), maxConns, maxPending, maxPerSource, time.Second)
	established = make(chan net.Conn, maxConns+1)
	go l.Serve(func(id string, c net.Conn) error { established <- c; return nil })
	t.Cleanup(func() { l.Close(func(string) {}) })
	return inner.Addr().String(), established, client
}

// TestListenerHandshakeFirst: the broker gets a connection only once its
// TLS handshake is done; a connection whose handshake fails is closed
// without reaching it, and gives its room back.
func TestListenerHandshakeFirst(t *testing.T) {
	addr, established, client := startListener(t, 1, 1, 1)
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(plain); err != nil {
		t.Fatalf("a connection that is not TLS: %v, want it closed", err)
	}
	// The only slot is free again.
	conn, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case c := <-established:
		if tc, ok := c.(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
			t.Fatalf("the broker got %T before its handshake was done", c)
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the TLS connection did not reach the broker")
	}
	if len(established) != 0 {
		t.Fatal("the connection that is not TLS reached the broker")
	}
}

// TestClosingBoundsWrites: once the listener closes, writes to a device
// that stopped reading share one short deadline, so shutdown's DISCONNECTs
// do not take a write timeout per stuck device.
func TestClosingBoundsWrites(t *testing.T) {
	t.Parallel()
	l := newTLSListener("test", nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 8, 8, 8, time.Minute)
	var conns []*trackedConn
	for range 3 {
		server, client := net.Pipe() // unbuffered: a write waits for a read that never comes
		t.Cleanup(func() { server.Close(); client.Close() })
		l.slots <- struct{}{} // as Serve takes a slot and a pending slot for each connection
		l.pending <- struct{}{}
		c := &trackedConn{Conn: server, l: l}
		l.open[c] = struct{}{}
		conns = append(conns, c)
	}
	l.closing.Store(time.Now().Add(200 * time.Millisecond).UnixNano())
	start := time.Now()
	for _, c := range conns {
		if _, err := c.Write([]byte("DISCONNECT")); err == nil {
			t.Fatal("a write to a device that does not read succeeded")
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("three stuck writes took %v; they share one deadline", took)
	}
}
