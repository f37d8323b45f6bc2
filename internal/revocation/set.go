package revocation

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ocsp"
)

// Set serves the revocation of every issuing CA a CA has had: one Service
// each, since the certificates of an issuing CA rotated away keep their
// CRL and OCSP answers. OCSP requests go to the Service of the issuer they
// name. Its methods are safe for concurrent use.
type Set struct {
	mu       sync.Mutex // serialises Add
	services atomic.Pointer[[]*Service]
}

// NewSet returns a Set of services.
func NewSet(services ...*Service) *Set {
	s := &Set{}
	s.services.Store(&services)
	return s
}

// Add adds a service, for an issuing CA adopted while running.
func (s *Set) Add(svc *Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append(slices.Clone(*s.services.Load()), svc)
	s.services.Store(&list)
}

// Services returns the services.
func (s *Set) Services() []*Service { return *s.services.Load() }

// CRL returns the CRL of the issuer whose certificate ID is issuerID; ok
// is false for another issuer or before its first Refresh.
func (s *Set) CRL(issuerID string) (CRL, bool) {
	for _, svc := range s.Services() {
		if svc.issuerID == issuerID {
			return svc.CRL()
		}
	}
	return CRL{}, false
}

// CRLs returns every issuer's CRL; ok is false while one has none yet.
func (s *Set) CRLs() ([]CRL, bool) {
	var crls []CRL
	for _, svc := range s.Services() {
		c, ok := svc.CRL()
		if !ok {
			return nil, false
		}
		crls = append(crls, c)
	}
	return crls, true
}

// Respond answers an OCSP request (see Service.Respond) with the service
// of the issuer it names; a request about none of them is unauthorized.
func (s *Set) Respond(ctx context.Context, raw []byte) Answer {
	services := s.Services()
	if len(services) == 0 {
		return Answer{DER: ocsp.InternalErrorErrorResponse}
	}
	req, err := ocsp.ParseRequest(raw)
	if err != nil {
		return services[0].refuse("malformed", ocsp.MalformedRequestErrorResponse)
	}
	for _, svc := range services {
		if svc.names(req) {
			return svc.respond(ctx, req)
		}
	}
	return services[0].refuse("unauthorized", ocsp.UnauthorizedErrorResponse)
}
