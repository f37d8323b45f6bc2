package server_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
	"github.com/fleetca/fleetca/internal/testpki"
)

// buildFleetca returns the fleetca binary, built once for the whole package
// (into binDir, which TestMain removes) however many tests run it.
func buildFleetca(t *testing.T) string {
	t.Helper()
	build.Do(func() {
		bin := filepath.Join(binDir, "fleetca")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/fleetca/fleetca/cmd/fleetca")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		build.bin = bin
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

var build struct {
	sync.Once
	bin string
	err error
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// child is fleetca serve running as a separate process.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

func startChild(t *testing.T, bin, dir, db string) *child {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--api-addr", addr, "--mqtt-addr", "")
	cmd.Env = append(os.Environ(), "FLEETCA_ACCOUNT_ID="+testAccount, "FLEETCA_ACCESS_KEY_ID="+testKeyID,
		"FLEETCA_SECRET_ACCESS_KEY="+testSecret, "FLEETCA_DATABASE_URL="+db)
	if db != "" {
		// PostgreSQL keeps the CA sealed in the database. SQLite's files
		// stay plain here: the binary seals with the real scrypt cost,
		// seconds a start, and these tests restart it dozens of times to
		// test durability, not sealing (secrets_at_rest_test.go does).
		cmd.Env = append(cmd.Env, "FLEETCA_CA_KEY_PASSPHRASE="+testPassphrase)
	}
	return launch(t, cmd, addr)
}

// launch starts cmd, a fleetca serve whose API is at addr, and waits until
// it is healthy; a child that exits first or takes over 30 s fails the
// test, with what it wrote to a bytes.Buffer stderr.
func launch(t *testing.T, cmd *exec.Cmd, addr string) *child {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, addr: addr, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	said := func() string {
		if b, ok := cmd.Stderr.(*bytes.Buffer); ok {
			return b.String()
		}
		return ""
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return c
		}
		select {
		case err := <-c.done:
			t.Fatalf("fleetca exited: %v\n%s", err, said())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("fleetca did not become healthy\n%s", said())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *child) client() *iot.Client {
	return (&testServer{}).clientFor("http://" + c.addr)
}

// ledger is what the server acknowledged, and what was in flight when it died.
type ledger struct {
	mu sync.Mutex
	// status is each acknowledged certificate's last acknowledged status.
	status map[string]types.CertificateStatus
	// inFlight is a status change sent but not answered when the server died.
	inFlight map[string]types.CertificateStatus
	cas      map[string]bool
	acked    int
	// described are the certificates whose PEM has been checked.
	described map[string]bool
}

// load drives concurrent creates, status changes and CA registrations until
// the server stops answering.
func (l *ledger) load(t *testing.T, c *iot.Client, workers int) {
	var wg sync.WaitGroup
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "crash"})
	ctx := context.Background()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				switch (w + i) % 4 {
				case 0, 1:
					active := i%2 == 0
					var out *iot.CreateCertificateFromCsrOutput
					out, err = c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: active})
					if err == nil {
						l.mu.Lock()
						l.status[*out.CertificateId] = map[bool]types.CertificateStatus{true: "ACTIVE", false: "INACTIVE"}[active]
						l.acked++
						l.mu.Unlock()
					}
				case 2:
					l.mu.Lock()
					var id string
					for k := range l.status {
						if _, busy := l.inFlight[k]; !busy && l.status[k] != types.CertificateStatusRevoked {
							id = k
							break
						}
					}
					target := types.CertificateStatusActive
					if l.status[id] == types.CertificateStatusActive {
						target = types.CertificateStatusInactive
					}
					if id != "" {
						l.inFlight[id] = target
					}
					l.mu.Unlock()
					if id == "" {
						continue
					}
					_, err = c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: target})
					l.mu.Lock()
					if err == nil {
						l.status[id] = target
						delete(l.inFlight, id)
						l.acked++
					}
					l.mu.Unlock()
				case 3:
					ca := testpki.NewRoot(t, "p256", fmt.Sprint("crash CA ", w, " ", i))
					var out *iot.RegisterCACertificateOutput
					out, err = c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.PEM), CertificateMode: types.CertificateModeSniOnly})
					if err == nil {
						l.mu.Lock()
						l.cas[*out.CertificateId] = true
						l.acked++
						l.mu.Unlock()
					}
				}
				if err != nil && !isErr[*types.ThrottlingException](err) {
					return // the server is gone
				}
			}
		}(w)
	}
	wg.Wait()
}

// check verifies that everything acknowledged survived, with the
// acknowledged status (or the status of a change in flight at the crash).
// Statuses are read by listing, every certificate every time; each
// certificate's PEM is described and checked once.
func (l *ledger) check(t *testing.T, c *iot.Client) {
	t.Helper()
	ctx := t.Context()
	got := map[string]types.CertificateStatus{}
	for p := iot.NewListCertificatesPaginator(c, &iot.ListCertificatesInput{PageSize: aws.Int32(250)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, cert := range page.Certificates {
			got[*cert.CertificateId] = cert.Status
		}
	}
	cas := map[string]bool{}
	for p := iot.NewListCACertificatesPaginator(c, &iot.ListCACertificatesInput{PageSize: aws.Int32(250)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ca := range page.Certificates {
			cas[*ca.CertificateId] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, want := range l.status {
		status, ok := got[id]
		if !ok {
			t.Fatalf("acknowledged certificate %s lost", id)
		}
		if pending, ok := l.inFlight[id]; ok && status == pending {
			l.status[id] = status // the change in flight was committed
		} else if status != want {
			t.Fatalf("certificate %s is %s, acknowledged %s", id, status, want)
		}
		delete(l.inFlight, id)
		if l.described[id] {
			continue
		}
		d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
		if err != nil {
			t.Fatalf("describing acknowledged certificate %s: %v", id, err)
		}
		if cert := parseCertPEM(t, *d.CertificateDescription.CertificatePem); sha256Hex(cert.Raw) != id {
			t.Fatalf("certificate %s has a PEM of another certificate", id)
		}
		l.described[id] = true
	}
	for id := range l.cas {
		if !cas[id] {
			t.Fatalf("acknowledged CA %s lost", id)
		}
	}
}

// killCount is how many times the crash test kills the server; raise it with
// FLEETCA_CRASH_KILLS for a long run.
func killCount() int {
	if n, err := strconv.Atoi(os.Getenv("FLEETCA_CRASH_KILLS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// TestCrashSafety kills fleetca with SIGKILL at random moments under
// concurrent writes, restarts it on the same data, and checks that no
// acknowledged write was lost and that the database is intact.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	bin := buildFleetca(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			db := ""
			if backend == "postgres" {
				db = pgtest.Schema(t)
			}
			dir := t.TempDir()
			l := &ledger{status: map[string]types.CertificateStatus{}, inFlight: map[string]types.CertificateStatus{}, cas: map[string]bool{}, described: map[string]bool{}}
			kills := killCount()
			if db != "" {
				// Each PostgreSQL start unseals the CA with scrypt's real
				// cost, seconds under the race detector; the acknowledgement
				// path is the writer's, the same as SQLite's, so fewer kills
				// test it (FLEETCA_CRASH_KILLS raises both).
				kills = max(kills/4, 1)
			}
			for k := 0; k < kills; k++ {
				ch := startChild(t, bin, dir, db)
				c := ch.client()
				l.check(t, c)
				go func() {
					time.Sleep(time.Duration(20+rand.IntN(200)) * time.Millisecond)
					ch.cmd.Process.Signal(syscall.SIGKILL)
				}()
				l.load(t, c, 8)
				<-ch.done
				if db == "" {
					st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "fleetca.db"))
					if err != nil {
						t.Fatal(err)
					}
					if err := st.IntegrityCheck(context.Background()); err != nil {
						t.Fatal(err)
					}
					st.Close()
				}
			}
			ch := startChild(t, bin, dir, db)
			l.check(t, ch.client())
			ch.cmd.Process.Signal(syscall.SIGTERM)
			<-ch.done
			t.Logf("%s: %d kills survived, %d acknowledged writes checked (%d certificates, %d CAs)", backend, kills, l.acked, len(l.status), len(l.cas))
		})
	}
}

// TestGracefulShutdown sends SIGTERM while requests are in flight: every
// request the server took is answered, and the process exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	bin := buildFleetca(t)
	dir := t.TempDir()
	ch := startChild(t, bin, dir, "")
	c := ch.client()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// RSA key generation keeps each request in flight for a while.
			if _, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{}); err == nil {
				mu.Lock()
				answered++
				mu.Unlock()
			}
			// A request still in the listen queue when the listener closes
			// is refused (EOF, connection refused) and never served.
		}()
	}
	time.Sleep(30 * time.Millisecond)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	select {
	case err := <-ch.done:
		if err != nil {
			t.Fatalf("fleetca exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		ch.cmd.Process.Kill()
		t.Fatal("fleetca did not exit after SIGTERM")
	}
	if answered == 0 {
		t.Fatal("no request in flight was answered")
	}
	// Every certificate the server made was answered: none was committed
	// and then cut off by the shutdown.
	ch = startChild(t, bin, dir, "")
	defer func() { ch.cmd.Process.Signal(syscall.SIGTERM); <-ch.done }()
	if n := certificateCount(t, ch.client()); n != answered {
		t.Fatalf("%d certificates stored, %d answered", n, answered)
	}
	t.Logf("%d of 8 requests were in flight at SIGTERM and answered", answered)
}
