package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

func caCert(scope iot.Scope, n int, subject string, mode iot.Mode, created time.Time) *iot.CACertificate {
	der := []byte(fmt.Sprintf("CA DER %d", n))
	return &iot.CACertificate{
		Scope:            scope,
		ID:               iot.CertificateID(der),
		Status:           iot.CAStatusInactive,
		AutoRegistration: iot.AutoRegistrationDisable,
		Mode:             mode,
		DER:              der,
		SubjectKey:       subject,
		OwnedBy:          scope.AccountID,
		CreatedAt:        created,
		LastModifiedAt:   created,
		CustomerVersion:  1,
		GenerationID:     fmt.Sprintf("gen-%d", n),
		NotBefore:        created.Add(-time.Hour),
		NotAfter:         created.Add(24 * time.Hour),
	}
}

// noLimit is a subject limit no test reaches.
const noLimit = 1 << 20

func mustCreateCA(t *testing.T, s store.Store, ca *iot.CACertificate, tags ...iot.Tag) {
	t.Helper()
	if err := s.CreateCACertificate(t.Context(), ca, tags, noLimit); err != nil {
		t.Fatalf("CreateCACertificate(%s): %v", ca.ID, err)
	}
}

func testCACreateAndGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	ca := caCert(scopeA, 1, "subj", iot.ModeDefault, base)
	ca.RegistrationConfig = iot.RegistrationConfig{TemplateBody: "{}", RoleARN: "arn:aws:iam::111111111111:role/r", TemplateName: "tmpl"}
	mustCreateCA(t, s, ca, iot.Tag{Key: "env", Value: "prod"})
	got, err := s.CACertificate(ctx, scopeA, ca.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ca.ID || got.Status != ca.Status || got.AutoRegistration != ca.AutoRegistration || got.Mode != ca.Mode ||
		string(got.DER) != string(ca.DER) || got.SubjectKey != ca.SubjectKey || got.RegistrationConfig != ca.RegistrationConfig ||
		got.OwnedBy != ca.OwnedBy || !got.CreatedAt.Equal(ca.CreatedAt) || got.CustomerVersion != 1 ||
		got.GenerationID != ca.GenerationID || !got.NotAfter.Equal(ca.NotAfter) {
		t.Fatalf("CACertificate =\n%+v\nwant\n%+v", got, ca)
	}
	if err := s.CreateCACertificate(ctx, ca, nil, noLimit); !errors.Is(err, store.ErrExists) {
		t.Fatalf("registering a CA twice = %v, want ErrExists", err)
	}
	if _, err := s.CACertificate(ctx, scopeB, ca.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another account sees the CA: %v", err)
	}
	tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeCACertificate, ID: ca.ID})
	if err != nil || len(tags) != 1 || tags[0] != (iot.Tag{Key: "env", Value: "prod"}) {
		t.Fatalf("tags stored with the CA: %v %v", tags, err)
	}
}

// testCAModesAcrossAccounts checks that a DEFAULT-mode CA belongs to one
// account per region while SNI_ONLY may be registered by many.
func testCAModesAcrossAccounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	def := caCert(scopeA, 1, "subj", iot.ModeDefault, base)
	mustCreateCA(t, s, def)
	inB := *def
	inB.Scope, inB.OwnedBy = scopeB, scopeB.AccountID
	if err := s.CreateCACertificate(ctx, &inB, nil, noLimit); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a DEFAULT CA in a second account of the region = %v, want ErrConflict", err)
	}
	inC := *def
	inC.Scope = scopeC // same account, another region
	mustCreateCA(t, s, &inC)
	sni := caCert(scopeA, 2, "subj2", iot.ModeSNIOnly, base)
	mustCreateCA(t, s, sni)
	sniB := *sni
	sniB.Scope, sniB.OwnedBy = scopeB, scopeB.AccountID
	mustCreateCA(t, s, &sniB)
}

func testCASubjectLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	const limit = 3
	for i := 0; i < limit; i++ {
		if err := s.CreateCACertificate(ctx, caCert(scopeA, i, "same", iot.ModeSNIOnly, base), nil, limit); err != nil {
			t.Fatal(err)
		}
	}
	extra := caCert(scopeA, limit, "same", iot.ModeSNIOnly, base)
	if err := s.CreateCACertificate(ctx, extra, nil, limit); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("CA over the subject limit = %v, want ErrLimit", err)
	}
	if _, err := s.CACertificate(ctx, scopeA, extra.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused CA was stored")
	}
	// Another subject, and the same subject in another account, are separate.
	mustCreateCA(t, s, caCert(scopeA, 100, "other", iot.ModeSNIOnly, base))
	if err := s.CreateCACertificate(ctx, caCert(scopeB, 101, "same", iot.ModeSNIOnly, base), nil, limit); err != nil {
		t.Fatal(err)
	}
	same, err := s.CACertificatesBySubject(ctx, scopeA, "same")
	if err != nil || len(same) != limit || same[0].DER == nil {
		t.Fatalf("CACertificatesBySubject = %d CAs, %v; want %d with DER", len(same), err, limit)
	}
	// Concurrent registrations still respect the limit.
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if s.CreateCACertificate(ctx, caCert(scopeC, 200+i, "race", iot.ModeSNIOnly, base), nil, limit) == nil {
				mu.Lock()
				stored++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if stored != limit {
		t.Fatalf("%d concurrent registrations of one subject stored, limit %d", stored, limit)
	}
}

func testCAListAndUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 23
	for i := 0; i < n; i++ {
		ca := caCert(scopeA, i, fmt.Sprint(i), iot.ModeSNIOnly, base.Add(time.Duration(i/2)*time.Second))
		if i%3 == 0 {
			ca.RegistrationConfig.TemplateName = "jitp"
		}
		mustCreateCA(t, s, ca)
	}
	for _, tc := range []struct {
		template string
		want     int
	}{{"", n}, {"jitp", (n + 2) / 3}, {"none", 0}} {
		for _, ascending := range []bool{true, false} {
			seen := map[string]bool{}
			var after *store.Cursor
			for {
				page, err := s.ListCACertificates(ctx, store.CACertificateQuery{Scope: scopeA, Limit: 4, Ascending: ascending, After: after, TemplateName: tc.template})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range page.CACertificates {
					if seen[c.ID] {
						t.Fatalf("%s listed twice", c.ID)
					}
					seen[c.ID] = true
				}
				if page.Next == nil {
					break
				}
				after = page.Next
			}
			if len(seen) != tc.want {
				t.Fatalf("template %q: listed %d CAs, want %d", tc.template, len(seen), tc.want)
			}
		}
	}
	id := caCert(scopeA, 0, "", "", base).ID
	got, err := s.UpdateCACertificate(ctx, scopeA, id, func(c *iot.CACertificate) error {
		c.Status, c.AutoRegistration = iot.CAStatusActive, iot.AutoRegistrationEnable
		c.RegistrationConfig = iot.RegistrationConfig{TemplateName: "other"}
		c.CustomerVersion++
		return nil
	})
	if err != nil || got.CustomerVersion != 2 {
		t.Fatalf("UpdateCACertificate: %v %+v", err, got)
	}
	stored, err := s.CACertificate(ctx, scopeA, id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != iot.CAStatusActive || stored.AutoRegistration != iot.AutoRegistrationEnable || stored.RegistrationConfig.TemplateName != "other" || stored.CustomerVersion != 2 {
		t.Fatalf("after update: %+v", stored)
	}
}

func testCADelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	ca := caCert(scopeA, 1, "s", iot.ModeDefault, base)
	mustCreateCA(t, s, ca, iot.Tag{Key: "k", Value: "v"})
	refuse := errors.New("refused")
	if err := s.DeleteCACertificate(ctx, scopeA, ca.ID, func(*iot.CACertificate) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatal(err)
	}
	if err := s.DeleteCACertificate(ctx, scopeA, ca.ID, func(*iot.CACertificate) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CACertificate(ctx, scopeA, ca.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("CA still there after delete")
	}
	// Registered again, it starts with no tags: tags went with the resource.
	mustCreateCA(t, s, ca)
	tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeCACertificate, ID: ca.ID})
	if err != nil || len(tags) != 0 {
		t.Fatalf("tags survived the CA's deletion: %v %v", tags, err)
	}
	// Once deleted in DEFAULT mode, another account may register it.
	if err := s.DeleteCACertificate(ctx, scopeA, ca.ID, func(*iot.CACertificate) error { return nil }); err != nil {
		t.Fatal(err)
	}
	inB := *ca
	inB.Scope = scopeB
	mustCreateCA(t, s, &inB)
}

func testListByCA(t *testing.T, s store.Store) {
	ctx := t.Context()
	caID := iot.CertificateID([]byte("the CA"))
	for i := 0; i < 30; i++ {
		c := cert(scopeA, i, base.Add(time.Duration(i)*time.Millisecond))
		if i%2 == 0 {
			c.CACertificateID = caID
		}
		mustCreate(t, s, c)
	}
	page, err := s.ListCertificates(ctx, store.CertificateQuery{Scope: scopeA, Limit: 100, CACertificateID: caID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Certificates) != 15 {
		t.Fatalf("%d certificates under the CA, want 15", len(page.Certificates))
	}
}

func testRegistrationCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	codes := make([]string, 20)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := s.RegistrationCode(ctx, scopeA, fmt.Sprintf("code-%d", i))
			if err != nil {
				t.Error(err)
			}
			codes[i] = c
		}(i)
	}
	wg.Wait()
	for _, c := range codes {
		if c != codes[0] || c == "" {
			t.Fatalf("concurrent callers got different codes: %v", codes)
		}
	}
	if _, err := s.RegistrationCode(ctx, scopeB, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reading a missing code = %v, want ErrNotFound", err)
	}
	if c, err := s.RegistrationCode(ctx, scopeB, "b"); err != nil || c != "b" {
		t.Fatalf("scope B's code %q, %v; want its own", c, err)
	}
	if err := s.DeleteRegistrationCode(ctx, scopeA); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRegistrationCode(ctx, scopeA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a missing code = %v, want ErrNotFound", err)
	}
	if c, err := s.RegistrationCode(ctx, scopeA, "fresh"); err != nil || c != "fresh" {
		t.Fatalf("after delete the code is %q, %v; want the new one", c, err)
	}
}

func testTags(t *testing.T, s store.Store) {
	ctx := t.Context()
	ca := caCert(scopeA, 1, "s", iot.ModeSNIOnly, base)
	r := iot.Resource{Scope: scopeA, Type: iot.TypeCACertificate, ID: ca.ID}
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "a", Value: "1"}}, 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tagging a missing resource = %v, want ErrNotFound", err)
	}
	mustCreateCA(t, s, ca)
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "a", Value: "one"}, {Key: "c", Value: "3"}}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "d", Value: "4"}}, 3); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a fourth tag with max 3 = %v, want ErrLimit", err)
	}
	if err := s.UntagResource(ctx, r, []string{"b", "absent"}); err != nil {
		t.Fatal(err)
	}
	tags, err := s.Tags(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	want := []iot.Tag{{Key: "a", Value: "one"}, {Key: "c", Value: "3"}}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Fatalf("tags %v, want %v", tags, want)
	}
	if _, err := s.Tags(ctx, iot.Resource{Scope: scopeB, Type: iot.TypeCACertificate, ID: ca.ID}); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("another account reads the tags")
	}
	if err := s.UntagResource(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeCertificate, ID: ca.ID}, []string{"a"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("an untaggable resource type was accepted")
	}
}
