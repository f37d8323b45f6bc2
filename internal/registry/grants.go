package registry

import (
	"context"
	"errors"
	"sync"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/store"
)

// Grants is what a connected device is granted: the default versions of
// the policies attached to its certificate, compiled, and the thing the
// connection's thing policy variables resolve to.
type Grants struct {
	Policies []*policy.Policy
	// PolicyNames are the attached policies' names, in Policies' order.
	PolicyNames []string
	// Thing is the thing named by the client ID if the certificate is
	// attached to it, else the one thing the certificate is attached to
	// exclusively, else nil.
	Thing *iot.Thing
	// Unparsable names attached policies whose stored document no longer
	// parses; they grant nothing, and the front end logs them.
	Unparsable []string
}

// ConnectionGrants reads what a device connecting with the scope's
// certificate and clientID is granted. Documents are compiled once and
// shared by every connection whose policies have the same text.
func (s *Service) ConnectionGrants(ctx context.Context, scope iot.Scope, certificateID, clientID string) (*Grants, error) {
	policies, thing, err := s.store.ConnectionGrants(ctx, scope, scope.CertificateARN(certificateID), clientID)
	if err != nil {
		return nil, internal("reading a device's policies", err)
	}
	if len(policies) == 0 && thing == nil {
		// A certificate with nothing attached may be a provisioning claim,
		// whose policy is implicit.
		if g, err := s.claimGrants(ctx, scope, certificateID); g != nil || err != nil {
			return g, err
		}
	}
	g := &Grants{Thing: thing, Policies: make([]*policy.Policy, 0, len(policies)), PolicyNames: make([]string, 0, len(policies))}
	for _, p := range policies {
		compiled, err := s.compiled.get(p.DefaultDocument)
		if err != nil {
			// Stored documents were checked when they were stored; one
			// that no longer parses (a later version reads the language
			// more strictly) grants nothing rather than failing every
			// connection of the certificate.
			g.Unparsable = append(g.Unparsable, p.Name)
			continue
		}
		g.Policies = append(g.Policies, compiled)
		g.PolicyNames = append(g.PolicyNames, p.Name)
	}
	return g, nil
}

// CompiledPolicy reads a policy's default version, compiled (shared with
// every grant of the same text); nil when the policy does not exist or its
// document no longer parses, either of which grants nothing.
func (s *Service) CompiledPolicy(ctx context.Context, scope iot.Scope, name string) (*policy.Policy, error) {
	p, err := s.store.Policy(ctx, scope, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, internal("reading a policy", err)
	}
	compiled, err := s.compiled.get(p.DefaultDocument)
	if err != nil {
		return nil, nil
	}
	return compiled, nil
}

// maxParsed bounds the parsed documents a cache keeps; a fleet shares few.
const maxParsed = 4096

// parsedCache keeps documents (policies, templates) parsed once, by their
// text.
type parsedCache[T any] struct {
	mu    sync.Mutex
	m     map[string]T
	parse func(doc string) (T, error)
}

func (c *parsedCache[T]) get(doc string) (T, error) {
	c.mu.Lock()
	p, ok := c.m[doc]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := c.parse(doc)
	if err != nil {
		return p, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxParsed || c.m == nil {
		// Dropping all is simplest, and a refill costs a parse per document.
		c.m = make(map[string]T)
	}
	c.m[doc] = p
	return p, nil
}
