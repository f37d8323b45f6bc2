package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/revocation"
)

// newRevocation makes the revocation service of the issuing CA ca.
func newRevocation(opts revocation.Options, authority *issuance.Authority, ca *x509.Certificate) (*revocation.Service, error) {
	signer, ok := authority.Issuer(iot.CertificateID(ca.Raw))
	if !ok {
		return nil, fmt.Errorf("revocation: no issuing CA %s", ca.Subject)
	}
	opts.Signer = signer
	return revocation.New(opts)
}

// followRotations adopts the issuing CAs that `fleetca ca rotate` stores in
// the shared database while this replica runs, every revocation poll: new
// certificates are signed by the newest within seconds, on every replica,
// without a restart, and each new issuing CA gets its CRL and OCSP.
func (s *Server) followRotations(ctx context.Context) {
	t := time.NewTicker(s.cfg.RevocationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		adopted, err := s.authority.AdoptStored(ctx, s.store, s.caKeys)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("following the issuing CA's rotations", "err", err)
		}
		for _, is := range adopted {
			s.startRevocation(ctx, is.Issuing())
			s.log.Info("signing with a new issuing CA, rotated in by another process", "issuer", is.IssuerID(), "subject", is.Issuing().Subject.String())
		}
	}
}

// startRevocation serves the revocation of an issuing CA adopted while
// running. Until its first CRL is made, its OCSP answers are tryLater.
func (s *Server) startRevocation(ctx context.Context, ca *x509.Certificate) {
	svc, err := newRevocation(s.revOpts, s.authority, ca)
	if err != nil {
		s.log.Error("revocation of a new issuing CA", "err", err)
		return
	}
	if err := svc.Refresh(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("revocation: the new issuing CA's first CRL", "err", err)
	}
	s.revocation.Add(svc)
	s.revocationWG.Go(func() { svc.Run(ctx) })
}
