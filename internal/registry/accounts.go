package registry

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store"
)

// Credential is an access key pair of an account.
type Credential struct {
	AccountID       string
	AccessKeyID     string
	SecretAccessKey string
}

// AccountSummary is an account as an operator lists it: its ID, when it was
// made, and the IDs of its access keys (never their secrets).
type AccountSummary struct {
	ID           string
	CreatedAt    time.Time
	AccessKeyIDs []string
}

// Accounts lists the accounts, oldest first, with their access key IDs.
func (s *Service) Accounts(ctx context.Context) ([]AccountSummary, error) {
	accounts, err := s.store.Accounts(ctx)
	if err != nil {
		return nil, internal("listing accounts", err)
	}
	keys, err := s.store.AccessKeys(ctx)
	if err != nil {
		return nil, internal("listing access keys", err)
	}
	byAccount := map[string][]string{}
	for _, k := range keys {
		byAccount[k.AccountID] = append(byAccount[k.AccountID], k.ID)
	}
	out := make([]AccountSummary, len(accounts))
	for i, a := range accounts {
		out[i] = AccountSummary{ID: a.ID, CreatedAt: a.CreatedAt, AccessKeyIDs: byAccount[a.ID]}
	}
	return out, nil
}

// DefaultAccount returns the oldest account, creating it with an access key
// when there is none. accountID chooses its ID (random when empty); created
// tells whether this call made it, and only then is the key returned. Replicas
// starting together on one database make one default account.
func (s *Service) DefaultAccount(ctx context.Context, accountID string) (account string, key *Credential, created bool, err error) {
	if accountID == "" {
		if accountID, err = RandomAccountID(); err != nil {
			return "", nil, false, err
		}
	}
	if !iot.ValidAccountID(accountID) {
		return "", nil, false, apierr.New(apierr.InvalidRequest, "An account ID is 12 digits; %q is not.", accountID)
	}
	cred, err := newCredential(accountID)
	if err != nil {
		return "", nil, false, err
	}
	stored, err := s.sealSecret(cred.AccessKeyID, cred.SecretAccessKey)
	if err != nil {
		return "", nil, false, err
	}
	now := s.timestamp()
	first, created, err := s.store.EnsureFirstAccount(ctx, store.Account{ID: accountID, CreatedAt: now},
		store.AccessKey{ID: cred.AccessKeyID, Secret: stored, AccountID: accountID, CreatedAt: now})
	if err != nil {
		return "", nil, false, internal("creating the default account", err)
	}
	if !created {
		return first.ID, nil, false, nil
	}
	return first.ID, cred, true, nil
}

// CreateAccount adds an account with a new access key pair.
func (s *Service) CreateAccount(ctx context.Context, accountID string) (*Credential, error) {
	if !iot.ValidAccountID(accountID) {
		return nil, apierr.New(apierr.InvalidRequest, "An account ID is 12 digits; %q is not.", accountID)
	}
	err := s.store.CreateAccount(ctx, store.Account{ID: accountID, CreatedAt: s.timestamp()})
	if errors.Is(err, store.ErrExists) {
		return nil, apierr.New(apierr.ResourceAlreadyExists, "The account %s exists already.", accountID)
	}
	if err != nil {
		return nil, internal("creating an account", err)
	}
	return s.CreateAccessKey(ctx, accountID)
}

// CreateAccessKey adds a new access key pair to an existing account.
func (s *Service) CreateAccessKey(ctx context.Context, accountID string) (*Credential, error) {
	cred, err := newCredential(accountID)
	if err != nil {
		return nil, err
	}
	return cred, s.AddAccessKey(ctx, *cred)
}

// AddAccessKey records a chosen access key pair for an existing account.
func (s *Service) AddAccessKey(ctx context.Context, cred Credential) error {
	stored, err := s.sealSecret(cred.AccessKeyID, cred.SecretAccessKey)
	if err != nil {
		return err
	}
	err = s.store.CreateAccessKey(ctx, store.AccessKey{ID: cred.AccessKeyID, Secret: stored, AccountID: cred.AccountID, CreatedAt: s.timestamp()})
	switch {
	case errors.Is(err, store.ErrExists):
		return apierr.New(apierr.ResourceAlreadyExists, "The access key %s exists already.", cred.AccessKeyID)
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(apierr.ResourceNotFound, "The account %s does not exist.", cred.AccountID)
	}
	return internal("adding an access key", err)
}

// AccessKey returns the secret and account of an access key; found is false
// for a key that does not exist. Every signed request asks, so keys found are
// remembered for a while (see accessKeyCache).
func (s *Service) AccessKey(ctx context.Context, id string) (secret, accountID string, found bool, err error) {
	now := s.now()
	if k, ok := s.accessKeys.get(id, now); ok {
		return k.secret, k.accountID, true, nil
	}
	secret, accountID, found, err = s.readAccessKey(ctx, id)
	if found {
		s.accessKeys.put(id, knownKey{secret: secret, accountID: accountID, until: now.Add(accessKeyTTL)})
	}
	return secret, accountID, found, err
}

func (s *Service) readAccessKey(ctx context.Context, id string) (secret, accountID string, found bool, err error) {
	k, err := s.store.AccessKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, internal("reading an access key", err)
	}
	if secret, err = s.openSecret(k); err != nil {
		return "", "", false, internal("opening an access key's secret", err)
	}
	return secret, k.AccountID, true, nil
}

// sealSecret is the form in which a secret is stored.
func (s *Service) sealSecret(id, secret string) (string, error) {
	if s.secrets == nil {
		return secret, nil
	}
	sealed, err := s.secrets.Seal(id, secret)
	return sealed, internal("sealing a secret access key", err)
}

// openSecret is the secret of a stored key. Keys stored before secrets were
// sealed (or by an operator command run without the passphrase) are read as
// they are until SealStoredSecrets seals them.
func (s *Service) openSecret(k store.AccessKey) (string, error) {
	if !keys.IsSealedSecret(k.Secret) {
		return k.Secret, nil
	}
	if s.secrets == nil {
		return "", fmt.Errorf("registry: the secret of %s is sealed and no passphrase is given", k.ID)
	}
	secret, err := s.secrets.Open(k.ID, k.Secret)
	return secret, internal("opening the secret of "+k.ID, err)
}

// SealStoredSecrets checks, at start, that every stored secret can be read:
// with a sealer it seals the secrets stored in the clear and opens each
// sealed one (a wrong passphrase stops the start); without one, a sealed
// secret stops the start, since no request signed with it could be checked.
// It returns how many secrets it sealed.
func (s *Service) SealStoredSecrets(ctx context.Context) (int, error) {
	list, err := s.store.AccessKeys(ctx)
	if err != nil {
		return 0, internal("listing access keys", err)
	}
	sealed := 0
	for _, k := range list {
		if keys.IsSealedSecret(k.Secret) {
			if _, err := s.openSecret(k); err != nil {
				return sealed, fmt.Errorf("the secret access keys in the database are sealed with another passphrase, or none is given: %w", err)
			}
			continue
		}
		if s.secrets == nil {
			continue
		}
		stored, err := s.sealSecret(k.ID, k.Secret)
		if err != nil {
			return sealed, err
		}
		err = s.store.ReplaceAccessKeySecret(ctx, k.ID, k.Secret, stored)
		if err != nil && !errors.Is(err, store.ErrNotFound) { // another replica sealed it first
			return sealed, internal("sealing a stored secret", err)
		}
		sealed++
	}
	return sealed, nil
}

// RandomAccountID returns a random 12-digit account ID.
func RandomAccountID() (string, error) {
	// 12 digits with no leading zero, like AWS account IDs.
	n, err := rand.Int(rand.Reader, big.NewInt(9e11))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%012d", n.Int64()+1e11), nil
}

// newCredential makes a key pair shaped like AWS's: a 20-character ID starting
// with AKIA and a 40-character secret.
func newCredential(accountID string) (*Credential, error) {
	id := make([]byte, 10)
	secret := make([]byte, 30)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return &Credential{
		AccountID:       accountID,
		AccessKeyID:     "AKIA" + base32.StdEncoding.EncodeToString(id),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret),
	}, nil
}

// An access key's secret never changes once the key is made (sealing changes
// how it is stored, not what it is), so the secret of a key found can be
// kept. The store's read costs a read transaction per signed request, and
// with a passphrase the opening of the sealed secret too: about a tenth of
// a lone client's CreateCertificateFromCsr (BENCHMARKS.md). The entries
// still expire, so that a key changed in the database outside this process
// is seen within accessKeyTTL. Unknown keys are not remembered: a key made
// a moment ago, here or on another replica, is found at once.
const (
	accessKeyTTL  = time.Minute
	maxAccessKeys = 4096
)

type knownKey struct {
	secret, accountID string
	until             time.Time
}

type accessKeyCache struct {
	mu sync.Mutex
	m  map[string]knownKey
}

func (c *accessKeyCache) get(id string, now time.Time) (knownKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.m[id]
	if !ok || !now.Before(k.until) {
		return knownKey{}, false
	}
	return k, true
}

func (c *accessKeyCache) put(id string, k knownKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxAccessKeys {
		// Dropping all is simplest; a refill costs a read per key.
		c.m = make(map[string]knownKey)
	}
	c.m[id] = k
}
