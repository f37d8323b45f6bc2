package server_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

func TestCreateKeysAndCertificate(t *testing.T) {
	t.Parallel()
	for _, pool := range []int{0, 2} {
		t.Run(fmt.Sprintf("key pool %d", pool), func(t *testing.T) { testCreateKeysAndCertificate(t, pool) })
	}
}

func testCreateKeysAndCertificate(t *testing.T, pool int) {
	ts := startServerWith(t, "", func(c *config.Config) { c.KeyPool = pool })
	c := ts.iotClient()
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ts.KeyPoolStats().Ready < pool; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the key pool is not full after a minute: %+v", ts.KeyPoolStats())
		}
	}
	for _, active := range []bool{true, false} {
		out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: active})
		if err != nil {
			t.Fatal(err)
		}
		cert := ts.verifyChain(t, *out.CertificatePem)
		sum := sha256.Sum256(cert.Raw)
		if id := hex.EncodeToString(sum[:]); *out.CertificateId != id {
			t.Errorf("certificateId %s, want SHA-256 of the DER %s", *out.CertificateId, id)
		}
		if want := "arn:aws:iot:" + testRegion + ":" + testAccount + ":cert/" + *out.CertificateId; *out.CertificateArn != want {
			t.Errorf("certificateArn %s, want %s", *out.CertificateArn, want)
		}
		if cert.Subject.String() != "CN=AWS IoT Certificate" {
			t.Errorf("subject %q, want CN=AWS IoT Certificate", cert.Subject)
		}
		// The private key is PKCS#1 RSA-2048 and belongs to the certificate.
		block, _ := pem.Decode([]byte(*out.KeyPair.PrivateKey))
		if block == nil || block.Type != "RSA PRIVATE KEY" {
			t.Fatalf("private key is not PKCS#1 PEM: %.40q", *out.KeyPair.PrivateKey)
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if key.N.BitLen() != 2048 || !key.PublicKey.Equal(cert.PublicKey) {
			t.Errorf("private key (%d bits) does not match the certificate", key.N.BitLen())
		}
		pubBlock, _ := pem.Decode([]byte(*out.KeyPair.PublicKey))
		if pubBlock == nil || pubBlock.Type != "PUBLIC KEY" {
			t.Fatalf("public key is not SPKI PEM")
		}
		pub, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
		if err != nil || !key.PublicKey.Equal(pub) {
			t.Errorf("public key does not match: %v", err)
		}
		desc, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
		if err != nil {
			t.Fatal(err)
		}
		d := desc.CertificateDescription
		want := types.CertificateStatusInactive
		if active {
			want = types.CertificateStatusActive
		}
		if d.Status != want || *d.CertificatePem != *out.CertificatePem || *d.OwnedBy != testAccount ||
			d.CertificateMode != types.CertificateModeDefault || *d.CustomerVersion != 1 || d.GenerationId == nil ||
			d.CaCertificateId != nil || d.TransferData == nil {
			t.Errorf("description %+v", d)
		}
		if !d.Validity.NotAfter.Equal(time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)) || !d.Validity.NotBefore.Equal(cert.NotBefore) {
			t.Errorf("validity %v - %v, certificate %v - %v", d.Validity.NotBefore, d.Validity.NotAfter, cert.NotBefore, cert.NotAfter)
		}
		if since := time.Since(*d.CreationDate); since < 0 || since > time.Minute || !d.LastModifiedDate.Equal(*d.CreationDate) {
			t.Errorf("creationDate %v, lastModifiedDate %v", d.CreationDate, d.LastModifiedDate)
		}
		// The private key is answered once: not stored, not logged.
		keyBody := strings.Split(*out.KeyPair.PrivateKey, "\n")[3]
		if strings.Contains(ts.logs.String(), keyBody) {
			t.Error("the private key appears in the logs")
		}
	}
	if strings.Contains(ts.logs.String(), testSecret) {
		t.Error("the secret access key appears in the logs")
	}
	if st := ts.KeyPoolStats(); int(st.Taken) != pool {
		t.Errorf("key pool %+v: want both keys from the pool of %d", st, pool)
	}
}

func TestCreateCertificateFromCsr(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	subject := pkix.Name{CommonName: "thing-42", Organization: []string{"Acme"}, SerialNumber: "SN-42"}
	for _, kind := range []string{"rsa-2048", "rsa-3072", "p256", "p384", "p521"} {
		t.Run(kind, func(t *testing.T) {
			csr, key := testpki.NewCSR(t, kind, subject)
			out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
			if err != nil {
				t.Fatal(err)
			}
			cert := ts.verifyChain(t, *out.CertificatePem)
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
				t.Error("the certificate does not certify the CSR's key")
			}
			if cert.Subject.String() != subject.String() {
				t.Errorf("subject %q, want the CSR's %q", cert.Subject, subject)
			}
			sum := sha256.Sum256(cert.Raw)
			if *out.CertificateId != hex.EncodeToString(sum[:]) {
				t.Error("certificateId is not the SHA-256 of the DER")
			}
			desc, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
			if err != nil {
				t.Fatal(err)
			}
			if desc.CertificateDescription.Status != types.CertificateStatusActive {
				t.Errorf("status %s, want ACTIVE", desc.CertificateDescription.Status)
			}
		})
	}
	t.Run("same CSR twice", func(t *testing.T) {
		csr, _ := testpki.NewCSR(t, "p256", subject)
		ids := map[string]bool{}
		for i := 0; i < 2; i++ {
			out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
			if err != nil {
				t.Fatal(err)
			}
			ids[*out.CertificateId] = true
		}
		if len(ids) != 2 {
			t.Fatal("the same CSR twice gave one certificate")
		}
	})
	t.Run("empty subject gets the default", func(t *testing.T) {
		csr, _ := testpki.NewCSR(t, "p256", pkix.Name{})
		out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
		if err != nil {
			t.Fatal(err)
		}
		if s := parseCertPEM(t, *out.CertificatePem).Subject.String(); s != "CN=AWS IoT Certificate" {
			t.Errorf("subject %q", s)
		}
	})
}

// TestBadInputChangesNothing sends input AWS refuses and checks the error and
// that no certificate appeared.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	good, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "x"})
	existing, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(good), SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, _ := testpki.NewCSR(t, "rsa-1024", pkix.Name{CommonName: "weak"})
	p224, _ := testpki.NewCSR(t, "p224", pkix.Name{CommonName: "curve"})
	nul, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "local\x00host"})
	integer, _ := testpki.NewCSR(t, "p256", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: 5}}})
	long, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: strings.Repeat("n", 1500)})
	oddSize, _ := testpki.NewCSR(t, "rsa-2056", pkix.Name{CommonName: "odd"})
	csrCases := []struct {
		name, csr, wantMessage string
	}{
		{"garbage", "this is not PEM", "no PEM data"},
		{"certificate instead of CSR", *existing.CertificatePem, "expected PEM type"},
		{"broken signature", brokenSignatureCSR(t, good), "signature"},
		{"RSA-1024", rsa1024, "2048"},
		{"P-224", p224, "P-224"},
		{"DSA", dsaCSR(t), "DSA"},
		{"Ed25519", ed25519CSR(t), "not supported"},
		{"NUL byte in the subject", nul, "control character"},
		{"integer in the subject", integer, "must be a UTF8String or PrintableString"},
		{"1,500-byte subject", long, "at most 1024"},
		{"RSA of 2056 bits", oddSize, "2048, 3072 or 4096 bits"},
		{"trailing data", good + "junk", "after the PEM"},
		{"5 KB", good + strings.Repeat(" ", 5000), "length between 1 and 4096"},
		{"empty", "", "length between 1 and 4096"},
	}
	for _, tc := range csrCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(tc.csr)})
			var ire *types.InvalidRequestException
			if !errors.As(err, &ire) {
				t.Fatalf("err = %v, want InvalidRequestException", err)
			}
			if !strings.Contains(ire.ErrorMessage(), tc.wantMessage) {
				t.Errorf("message %q does not mention %q", ire.ErrorMessage(), tc.wantMessage)
			}
		})
	}
	id := *existing.CertificateId
	requestCases := []struct {
		name string
		call func() error
		want func(error) bool
	}{
		{"malformed marker", func() error {
			_, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{Marker: aws.String("not*base64")})
			return err
		}, isErr[*types.InvalidRequestException]},
		{"foreign marker", func() error {
			_, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{Marker: aws.String("bm90IG91ciBtYXJrZXI=")})
			return err
		}, isErr[*types.InvalidRequestException]},
		{"page size 0", func() error {
			_, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{PageSize: aws.Int32(0)})
			return err
		}, isErr[*types.InvalidRequestException]},
		{"page size 251", func() error {
			_, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{PageSize: aws.Int32(251)})
			return err
		}, isErr[*types.InvalidRequestException]},
		{"unknown status", func() error {
			_, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: "DESTROYED"})
			return err
		}, isErr[*types.InvalidRequestException]},
		{"short certificate ID", func() error {
			_, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String("abc")})
			return err
		}, isErr[*types.InvalidRequestException]},
		{"non-hex certificate ID", func() error {
			_, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(strings.Repeat("g", 64))})
			return err
		}, isErr[*types.InvalidRequestException]},
	}
	for _, tc := range requestCases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !tc.want(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if n := certificateCount(t, c); n != 1 {
		t.Fatalf("%d certificates after bad input, want the 1 made before", n)
	}
	desc, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: existing.CertificateId})
	if err != nil || desc.CertificateDescription.Status != types.CertificateStatusActive || *desc.CertificateDescription.CustomerVersion != 1 {
		t.Fatalf("the existing certificate changed: %v %+v", err, desc)
	}
}

func TestListCertificatesPagination(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	const n = 600
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "paged"})
	created := make(chan string, n)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/8; i++ {
				out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
				if err != nil {
					t.Error(err)
					return
				}
				created <- *out.CertificateId
			}
		}()
	}
	wg.Wait()
	close(created)
	want := map[string]bool{}
	for id := range created {
		want[id] = true
	}
	if len(want) != n {
		t.Fatalf("created %d distinct certificates, want %d", len(want), n)
	}
	for _, tc := range []struct {
		pageSize  int32
		ascending bool
	}{{25, false}, {250, false}, {7, true}, {250, true}, {0, false}} {
		in := &iot.ListCertificatesInput{AscendingOrder: tc.ascending}
		if tc.pageSize > 0 {
			in.PageSize = aws.Int32(tc.pageSize)
		}
		seen := map[string]bool{}
		var last *time.Time
		pages := 0
		p := iot.NewListCertificatesPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			size := int(tc.pageSize)
			if size == 0 {
				size = 25 // the default
			}
			if len(page.Certificates) > size || (page.NextMarker != nil && len(page.Certificates) != size) {
				t.Fatalf("page of %d with pageSize %d", len(page.Certificates), size)
			}
			for _, cert := range page.Certificates {
				if seen[*cert.CertificateId] || !want[*cert.CertificateId] {
					t.Fatalf("%s listed twice or never created", *cert.CertificateId)
				}
				seen[*cert.CertificateId] = true
				if last != nil && cert.CreationDate.Before(*last) == tc.ascending && !cert.CreationDate.Equal(*last) {
					t.Fatalf("order broken (ascending=%v): %v after %v", tc.ascending, cert.CreationDate, last)
				}
				last = cert.CreationDate
			}
		}
		if len(seen) != n {
			t.Fatalf("pageSize %d ascending %v: listed %d of %d in %d pages", tc.pageSize, tc.ascending, len(seen), n, pages)
		}
	}
}

func TestUpdateCertificate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.CertificateId
	describe := func() *types.CertificateDescription {
		t.Helper()
		d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return d.CertificateDescription
	}
	steps := []struct {
		newStatus   types.CertificateStatus
		wantErr     func(error) bool
		wantStatus  types.CertificateStatus
		wantVersion int32
	}{
		{types.CertificateStatusActive, nil, types.CertificateStatusActive, 2},
		{types.CertificateStatusActive, nil, types.CertificateStatusActive, 2}, // the same status again: no change
		{types.CertificateStatusInactive, nil, types.CertificateStatusInactive, 3},
		{types.CertificateStatusPendingTransfer, isErr[*types.InvalidRequestException], types.CertificateStatusInactive, 3},
		{types.CertificateStatusPendingActivation, isErr[*types.InvalidRequestException], types.CertificateStatusInactive, 3},
		{types.CertificateStatusRegisterInactive, isErr[*types.InvalidRequestException], types.CertificateStatusInactive, 3},
		{types.CertificateStatusRevoked, nil, types.CertificateStatusRevoked, 4},
		{types.CertificateStatusActive, isErr[*types.CertificateStateException], types.CertificateStatusRevoked, 4},
		{types.CertificateStatusInactive, isErr[*types.CertificateStateException], types.CertificateStatusRevoked, 4},
		{types.CertificateStatusRevoked, nil, types.CertificateStatusRevoked, 4},
	}
	prev := describe()
	for i, step := range steps {
		_, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: step.newStatus})
		if step.wantErr == nil && err != nil || step.wantErr != nil && !step.wantErr(err) {
			t.Fatalf("step %d (%s): err = %v", i, step.newStatus, err)
		}
		d := describe()
		if d.Status != step.wantStatus || *d.CustomerVersion != step.wantVersion {
			t.Fatalf("step %d (%s): status %s version %d, want %s %d", i, step.newStatus, d.Status, *d.CustomerVersion, step.wantStatus, step.wantVersion)
		}
		changed := *d.CustomerVersion != *prev.CustomerVersion
		if changed == (*d.GenerationId == *prev.GenerationId) {
			t.Fatalf("step %d: generationId must change exactly when the version does", i)
		}
		if changed && !d.LastModifiedDate.After(*prev.LastModifiedDate) && !d.LastModifiedDate.Equal(*prev.LastModifiedDate) {
			t.Fatalf("step %d: lastModifiedDate went back", i)
		}
		prev = d
	}
	_, err = c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(strings.Repeat("a", 64)), NewStatus: types.CertificateStatusActive})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("updating an unknown certificate: %v", err)
	}
}

func TestDeleteCertificate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.CertificateId
	_, err = c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id), ForceDelete: true})
	var state *types.CertificateStateException
	if !errors.As(err, &state) {
		t.Fatalf("deleting an ACTIVE certificate: %v, want CertificateStateException", err)
	}
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)}); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}
	// IDs are accepted in upper case and with a 0x prefix.
	upper := "0x" + strings.ToUpper(id)
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(upper), NewStatus: types.CertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(upper), ForceDelete: true}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)}); !errors.As(err, &nf) {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)}); !errors.As(err, &nf) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestRestartKeepsEverything stops the server and starts another on the same
// data directory.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	c := ts.iotClient()
	ctx := context.Background()
	rootBefore := ts.rootCA(t)
	out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "persisted"})
	fromCSR, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: fromCSR.CertificateId, NewStatus: types.CertificateStatusRevoked}); err != nil {
		t.Fatal(err)
	}
	fileKeyID, fileSecret := readCredentialsFile(t, dir+"/credentials")
	ts.stop(t)

	ts = startServer(t, dir)
	c = ts.iotClient()
	if ts.AccountID != testAccount {
		t.Errorf("account %s after restart, want %s", ts.AccountID, testAccount)
	}
	if !ts.rootCA(t).Equal(rootBefore) {
		t.Error("the root CA changed across a restart")
	}
	for id, want := range map[string]types.CertificateStatus{*out.CertificateId: types.CertificateStatusActive, *fromCSR.CertificateId: types.CertificateStatusRevoked} {
		d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if d.CertificateDescription.Status != want {
			t.Errorf("%s: status %s after restart, want %s", id, d.CertificateDescription.Status, want)
		}
	}
	if got, _ := readCredentialsFile(t, dir+"/credentials"); got != fileKeyID {
		t.Error("the credentials file was rewritten on restart")
	}
	// The key pair written on first start still works.
	if n := certificateCount(t, ts.client(fileKeyID, fileSecret)); n != 2 {
		t.Errorf("the credentials-file key sees %d certificates, want 2", n)
	}
	// A certificate issued after the restart chains to the same root.
	again, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	ts.verifyChain(t, *again.CertificatePem)
}

func readCredentialsFile(t *testing.T, path string) (keyID, secret string) {
	t.Helper()
	data, err := readFileMode(t, path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			keyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	if keyID == "" || secret == "" {
		t.Fatalf("credentials file %s has no key pair", path)
	}
	return keyID, secret
}
