package server_test

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/server"
)

// TestBackupUnderLoadRestores takes a backup while clients create
// certificates, restores it into a new data directory, and finds there every
// certificate acknowledged before the backup began, with the same CA.
func TestBackupUnderLoadRestores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	root := ts.rootCA(t)
	c := ts.iotClient()

	var mu sync.Mutex
	var acked []string
	enough, once := make(chan struct{}), sync.Once{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := c.CreateKeysAndCertificate(t.Context(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if acked = append(acked, *out.CertificateId); len(acked) >= 20 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	<-enough
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "fleetca.backup")
	sum, err := server.Backup(t.Context(), testConfig(dir), out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}
	t.Logf("backup of %d files (database %d bytes) taken with %d certificates acknowledged, %d by the end", len(sum.Files), sum.DatabaseBytes, len(before), len(acked))

	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := server.Restore(t.Context(), testConfig(restored), out, false); err != nil {
		t.Fatal(err)
	}
	rs := startServer(t, restored)
	if got := rs.rootCA(t); !got.Equal(root) {
		t.Fatal("the restored data directory has another CA")
	}
	rc := rs.iotClient()
	for _, id := range before {
		if _, err := rc.DescribeCertificate(t.Context(), &iot.DescribeCertificateInput{CertificateId: &id}); err != nil {
			t.Fatalf("certificate %s, acknowledged before the backup, is not in it: %v", id, err)
		}
	}
	kp := rs.claim(t, rc)
	if _, err := rs.connect(t, kp, ""); err != nil {
		t.Fatalf("a device of the restored server cannot connect: %v", err)
	}
}

// TestRestoreRefusals: a non-empty data directory is kept unless --force,
// which moves it aside; a directory a server uses is never touched; an
// archive with other files than a backup's is refused and changes nothing.
func TestRestoreRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	out := filepath.Join(t.TempDir(), "fleetca.backup")
	if _, err := server.Backup(t.Context(), testConfig(dir), out); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Backup(t.Context(), testConfig(dir), out); err == nil {
		t.Fatal("a backup overwrote an existing file")
	}
	if _, err := server.Restore(t.Context(), testConfig(dir), out, true); err == nil || !strings.Contains(err.Error(), "another fleetca") {
		t.Fatalf("restore into a directory a server uses: %v", err)
	}
	ts.stop(t)
	if _, err := server.Restore(t.Context(), testConfig(dir), out, false); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty directory without force: %v", err)
	}
	replaced, err := server.Restore(t.Context(), testConfig(dir), out, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(replaced, "fleetca.db")); err != nil {
		t.Fatalf("the replaced directory was not kept at %s: %v", replaced, err)
	}
	startServer(t, dir)

	// An empty directory, such as a volume's mount point, is filled in
	// place, and a crash's leftover temporary file in ca/ is not backed up.
	if err := os.WriteFile(filepath.Join(dir, "ca", ".tmp-issuing.key-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again.backup")
	if _, err := server.Backup(t.Context(), testConfig(dir), again); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if replaced, err := server.Restore(t.Context(), testConfig(empty), again, false); err != nil || replaced != "" {
		t.Fatalf("restore into an empty directory: %q, %v", replaced, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(empty, "ca")); len(entries) != 6 {
		t.Fatalf("restored ca/ holds %d files, want the CA's 6", len(entries))
	}
	startServer(t, empty)

	// An archive with an entry outside the data directory.
	evil := filepath.Join(t.TempDir(), "evil.backup")
	f, err := os.Create(evil)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	gz.Close()
	f.Close()
	target := filepath.Join(t.TempDir(), "fresh")
	if _, err := server.Restore(t.Context(), testConfig(target), evil, false); err == nil || !strings.Contains(err.Error(), "unexpected entry") {
		t.Fatalf("restore of a hostile archive: %v", err)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a refused restore left a data directory behind")
	}
}
