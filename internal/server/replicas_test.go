package server_test

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/testpki"
)

const testPassphrase = "replica test passphrase"

// startReplicas starts n fleetca servers at once on one PostgreSQL schema,
// each with its own data directory, as n replicas behind a load balancer;
// configure, when set, changes each one's configuration.
func startReplicas(t *testing.T, n int, configure func(*config.Config)) []*testServer {
	t.Helper()
	db := pgtest.Schema(t)
	servers := make([]*testServer, n)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			servers[i] = startServerWith(t, "", func(c *config.Config) {
				c.Database = db
				c.CAKeyPassphrase = testPassphrase
				if configure != nil {
					configure(c)
				}
			})
		}(i)
	}
	wg.Wait()
	return servers
}

// hammer runs f perReplica times on every replica's client at once.
func hammer(replicas []*testServer, perReplica int, f func(c *iot.Client, replica, i int)) {
	var wg sync.WaitGroup
	for r, ts := range replicas {
		c := ts.iotClient()
		for i := 0; i < perReplica; i++ {
			wg.Add(1)
			go func(r, i int) {
				defer wg.Done()
				f(c, r, i)
			}(r, i)
		}
	}
	wg.Wait()
}

func TestReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	replicas := startReplicas(t, 2, nil)
	a, b := replicas[0].iotClient(), replicas[1].iotClient()
	ctx := context.Background()

	t.Run("one CA and one default account", func(t *testing.T) {
		if !replicas[0].rootCA(t).Equal(replicas[1].rootCA(t)) {
			t.Fatal("the replicas sign with different CAs")
		}
		if replicas[0].AccountID != replicas[1].AccountID {
			t.Fatalf("the replicas made two default accounts: %s and %s", replicas[0].AccountID, replicas[1].AccountID)
		}
		out, err := a.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
		if err != nil {
			t.Fatal(err)
		}
		replicas[1].verifyChain(t, *out.CertificatePem)
	})

	t.Run("concurrent creates", func(t *testing.T) {
		before := certificateCount(t, a)
		csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "replica"})
		var mu sync.Mutex
		ids := map[string]bool{}
		hammer(replicas, 60, func(c *iot.Client, _, _ int) {
			out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[*out.CertificateId] = true
			mu.Unlock()
		})
		if len(ids) != 120 {
			t.Fatalf("%d distinct certificates from 120 creates", len(ids))
		}
		for _, c := range []*iot.Client{a, b} {
			if n := certificateCount(t, c); n != before+120 {
				t.Fatalf("a replica lists %d certificates, want %d", n, before+120)
			}
		}
	})

	t.Run("CA subject limit", func(t *testing.T) {
		var mu sync.Mutex
		ok, limited := 0, 0
		hammer(replicas, 7, func(c *iot.Client, _, _ int) {
			ca := testpki.NewRoot(t, "p256", "Replicated Subject")
			_, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.PEM), CertificateMode: types.CertificateModeSniOnly})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case isErr[*types.LimitExceededException](err):
				limited++
			default:
				t.Error(err)
			}
		})
		if ok != 10 || limited != 4 {
			t.Fatalf("%d registered, %d refused; want 10 and 4", ok, limited)
		}
	})

	t.Run("one provider, one answer per client token", func(t *testing.T) {
		const token = "5b4a2c1d-replica-token-0000-000000000000"
		var mu sync.Mutex
		sameOK := 0
		hammer(replicas, 6, func(c *iot.Client, r, i int) {
			in := createProvider("shared", signerARN, token)
			if i%2 == 1 {
				in = createProvider(fmt.Sprint("other-", r, "-", i), signerARN, "")
			}
			_, err := c.CreateCertificateProvider(ctx, in)
			if err == nil && i%2 == 0 {
				mu.Lock()
				sameOK++
				mu.Unlock()
			}
		})
		list, err := b.ListCertificateProviders(ctx, &iot.ListCertificateProvidersInput{})
		if err != nil || len(list.CertificateProviders) != 1 {
			t.Fatalf("%d providers after concurrent creates: %v", len(list.CertificateProviders), err)
		}
		if *list.CertificateProviders[0].CertificateProviderName == "shared" && sameOK != 6 {
			t.Fatalf("the winning client token answered %d of its 6 calls", sameOK)
		}
	})

	t.Run("one registration code", func(t *testing.T) {
		var mu sync.Mutex
		codes := map[string]bool{}
		hammer(replicas, 10, func(c *iot.Client, _, _ int) {
			code := registrationCode(t, c)
			mu.Lock()
			codes[code] = true
			mu.Unlock()
		})
		if len(codes) != 1 {
			t.Fatalf("%d registration codes", len(codes))
		}
	})

	t.Run("status races", func(t *testing.T) {
		out, err := a.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
		if err != nil {
			t.Fatal(err)
		}
		id := out.CertificateId
		var mu sync.Mutex
		calls := 0
		hammer(replicas, 20, func(c *iot.Client, r, i int) {
			status := types.CertificateStatusActive
			if (r+i)%2 == 1 {
				status = types.CertificateStatusInactive
			}
			if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: id, NewStatus: status}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			calls++
			mu.Unlock()
		})
		_, d := describeStatus(t, b, *id)
		if v := *d.CustomerVersion; v < 2 || v > int32(1+calls) {
			t.Fatalf("customer version %d after %d status calls", v, calls)
		}
		// REVOKED is final however the calls interleave.
		hammer(replicas, 10, func(c *iot.Client, r, i int) {
			status := types.CertificateStatusActive
			if r == 0 && i == 5 {
				status = types.CertificateStatusRevoked
			}
			_, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: id, NewStatus: status})
			if err != nil && !isErr[*types.CertificateStateException](err) {
				t.Error(err)
			}
		})
		if status, _ := describeStatus(t, a, *id); status != types.CertificateStatusRevoked {
			t.Fatalf("status %s after a revoke raced other updates", status)
		}
	})

	t.Run("paging through one replica while the other inserts", func(t *testing.T) {
		existing := map[string]bool{}
		p := iot.NewListCertificatesPaginator(a, &iot.ListCertificatesInput{PageSize: aws.Int32(250)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Certificates {
				existing[*c.CertificateId] = true
			}
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "inserted"})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		seen := map[string]int{}
		pb := iot.NewListCertificatesPaginator(b, &iot.ListCertificatesInput{PageSize: aws.Int32(9)})
		for pb.HasMorePages() {
			page, err := pb.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Certificates {
				seen[*c.CertificateId]++
			}
		}
		close(stop)
		<-done
		for id := range existing {
			if seen[id] != 1 {
				t.Fatalf("%s listed %d times while the other replica inserted", id, seen[id])
			}
		}
	})
}
