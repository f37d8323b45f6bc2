package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/testpki"
)

// freezingProxy forwards TCP connections to target until Freeze, after which
// it keeps every connection open and forwards nothing: a database that has
// stopped answering without closing anything.
type freezingProxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
	return p
}

func (p *freezingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

func (p *freezingProxy) close() {
	p.frozen.Store(false)
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestHungPostgres: when PostgreSQL stops answering (a proxy that stops
// forwarding), requests answer 503 ServiceUnavailableException within the
// database timeout instead of hanging, and shutdown finishes within its
// budget.
func TestHungPostgres(t *testing.T) {
	if os.Getenv("FLEETCA_TEST_POSTGRES") == "" {
		t.Skip("SKIPPED: FLEETCA_TEST_POSTGRES is not set; the hung-database test did not run")
	}
	t.Parallel()
	db := pgtest.Schema(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFreezingProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	ts := startServerWith(t, "", func(c *config.Config) {
		c.Database = u.String()
		c.CAKeyPassphrase = testPassphrase
		c.DatabaseTimeout = time.Second
		c.MQTTAddr = ""
	})
	c := ts.iotClient()
	ctx := context.Background()
	csr, _ := testpki.NewCSR(t, "p256", pkixName("before the hang"))
	if _, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)}); err != nil {
		t.Fatal(err)
	}
	proxy.frozen.Store(true)
	for name, call := range map[string]func() error{
		"write": func() error {
			_, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
			return err
		},
		"read": func() error {
			_, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{})
			return err
		},
	} {
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if !isErr[*types.ServiceUnavailableException](err) {
			t.Fatalf("%s while the database hangs: %v, want ServiceUnavailableException", name, err)
		}
		if elapsed > 10*time.Second {
			t.Fatalf("%s took %v to fail", name, elapsed)
		}
		t.Logf("%s: 503 after %v", name, elapsed.Round(time.Millisecond))
	}
	resp, err := http.Get(ts.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while the database hangs: %d %s", resp.StatusCode, body)
	}
	t.Logf("/readyz: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	start := time.Now()
	ts.stop(t)
	elapsed := time.Since(start)
	if elapsed > 15*time.Second {
		t.Fatalf("shutdown took %v with the database hung", elapsed)
	}
	t.Logf("shutdown with the database hung: %v", elapsed.Round(time.Millisecond))
}
