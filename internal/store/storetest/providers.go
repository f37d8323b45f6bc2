package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

func provider(scope iot.Scope, name string) *iot.CertificateProvider {
	return &iot.CertificateProvider{
		Scope:                       scope,
		Name:                        name,
		LambdaFunctionARN:           "arn:aws:lambda:us-east-1:" + scope.AccountID + ":function:" + name,
		AccountDefaultForOperations: []string{iot.OperationCreateCertificateFromCsr},
		CreatedAt:                   base,
		LastModifiedAt:              base,
	}
}

func testProviders(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := provider(scopeA, "signer")
	replayed, err := s.CreateCertificateProvider(ctx, p, []iot.Tag{{Key: "k", Value: "v"}}, store.ClientToken{Value: "token-1", Hash: "h1"})
	if err != nil || replayed {
		t.Fatalf("CreateCertificateProvider = %v, %v", replayed, err)
	}
	got, err := s.CertificateProvider(ctx, scopeA, "signer")
	if err != nil || got.LambdaFunctionARN != p.LambdaFunctionARN || len(got.AccountDefaultForOperations) != 1 || !got.CreatedAt.Equal(base) {
		t.Fatalf("CertificateProvider = %+v, %v", got, err)
	}
	if sp, err := s.ScopeCertificateProvider(ctx, scopeA); err != nil || sp.Name != "signer" {
		t.Fatalf("ScopeCertificateProvider = %+v, %v", sp, err)
	}
	cases := []struct {
		name  string
		p     *iot.CertificateProvider
		token store.ClientToken
		want  error
	}{
		{"same token, same request", p, store.ClientToken{Value: "token-1", Hash: "h1"}, nil},
		{"same token, other request", provider(scopeA, "other"), store.ClientToken{Value: "token-1", Hash: "h2"}, store.ErrTokenMismatch},
		{"same name", p, store.ClientToken{Value: "token-2", Hash: "h1"}, store.ErrExists},
		{"same name, no token", p, store.ClientToken{}, store.ErrExists},
		{"second provider", provider(scopeA, "second"), store.ClientToken{Value: "token-3", Hash: "h3"}, store.ErrLimit},
	}
	for _, tc := range cases {
		replayed, err := s.CreateCertificateProvider(ctx, tc.p, nil, tc.token)
		if tc.want == nil && (err != nil || !replayed) || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: replayed=%v err=%v, want %v", tc.name, replayed, err, tc.want)
		}
	}
	if _, err := s.CertificateProvider(ctx, scopeA, "second"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused provider was stored")
	}
	// Other scopes have their own provider.
	for _, scope := range []iot.Scope{scopeB, scopeC} {
		if _, err := s.CreateCertificateProvider(ctx, provider(scope, "signer"), nil, store.ClientToken{Value: "token-1", Hash: "h1"}); err != nil {
			t.Fatalf("%v: %v", scope, err)
		}
	}
	later := base.Add(time.Hour)
	up, err := s.UpdateCertificateProvider(ctx, scopeA, "signer", func(p *iot.CertificateProvider) error {
		p.LambdaFunctionARN = "arn:aws:lambda:us-east-1:111111111111:function:v2"
		p.LastModifiedAt = later
		return nil
	})
	if err != nil || up.LambdaFunctionARN != "arn:aws:lambda:us-east-1:111111111111:function:v2" {
		t.Fatalf("UpdateCertificateProvider = %+v, %v", up, err)
	}
	if got, err := s.CertificateProvider(ctx, scopeA, "signer"); err != nil || !got.LastModifiedAt.Equal(later) || !got.CreatedAt.Equal(base) {
		t.Fatalf("after update: %+v, %v", got, err)
	}
	list, more, err := s.ListCertificateProviders(ctx, scopeA, "", true, 10)
	if err != nil || more || len(list) != 1 || list[0].Name != "signer" {
		t.Fatalf("ListCertificateProviders = %+v, %v, %v", list, more, err)
	}
	if list, more, err := s.ListCertificateProviders(ctx, scopeA, "signer", true, 10); err != nil || more || len(list) != 0 {
		t.Fatalf("listing after the last name: %+v, %v, %v", list, more, err)
	}
	r := iot.Resource{Scope: scopeA, Type: iot.TypeCertificateProvider, ID: "signer"}
	if tags, err := s.Tags(ctx, r); err != nil || len(tags) != 1 {
		t.Fatalf("provider tags: %v %v", tags, err)
	}
	if err := s.DeleteCertificateProvider(ctx, scopeA, "signer"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCertificateProvider(ctx, scopeA, "signer"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete = %v", err)
	}
	if _, err := s.Tags(ctx, r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tags of a deleted provider = %v", err)
	}
	// After the delete, a new provider with a new token may be created, and
	// the old token still replays as the first answer.
	if _, err := s.CreateCertificateProvider(ctx, provider(scopeA, "second"), nil, store.ClientToken{Value: "token-4", Hash: "h4"}); err != nil {
		t.Fatal(err)
	}
	if tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeCertificateProvider, ID: "second"}); err != nil || len(tags) != 0 {
		t.Fatalf("a new provider inherited tags: %v, %v", tags, err)
	}
	if replayed, err := s.CreateCertificateProvider(ctx, p, nil, store.ClientToken{Value: "token-1", Hash: "h1"}); err != nil || !replayed {
		t.Fatalf("replaying the first token later: %v %v", replayed, err)
	}
}

// testConcurrentProviderCreates races creations in one scope: exactly one
// provider results, every replay of its token succeeds, everything else fails
// with a store error.
func testConcurrentProviderCreates(t *testing.T, s store.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, replays, refused := 0, 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name, token := "same", store.ClientToken{Value: "shared", Hash: "h"}
			if i%2 == 1 {
				name, token = "other", store.ClientToken{Value: "other-" + string(rune('a'+i)), Hash: "o"}
			}
			replayed, err := s.CreateCertificateProvider(ctx, provider(scopeA, name), nil, token)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && replayed:
				replays++
			case err == nil:
				created++
			case errors.Is(err, store.ErrLimit), errors.Is(err, store.ErrExists), errors.Is(err, store.ErrTokenMismatch):
				refused++
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if created != 1 || created+replays+refused != 20 {
		t.Fatalf("created %d, replayed %d, refused %d: want exactly one created", created, replays, refused)
	}
}
