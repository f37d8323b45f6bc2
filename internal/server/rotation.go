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
// without a restart. Each new issuing CA serves its CRL and OCSP answers
// before it signs anything; one that cannot yet is tried again at the next
// poll.
func (s *Server) followRotations(ctx context.Context) {
	t := time.NewTicker(s.cfg.RevocationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		adopted, err := s.authority.AdoptStored(ctx, s.store, s.caKeys, func(is *issuance.IssuerKey) error {
			return s.startRevocation(ctx, is)
		})
		if ctx.Err() != nil {
			return
		}
		// A replica that cannot take up a rotation refuses the devices of
		// the new issuing CA that the others admit: it must not look ready.
		if err != nil {
			err = fmt.Errorf("taking up the issuing CA rotated in elsewhere: %w", err)
			s.rotationErr.Store(&err)
		} else {
			s.rotationErr.Store(nil)
		}
		for _, is := range adopted {
			s.log.Info("signing with a new issuing CA, rotated in by another process", "issuer", is.IssuerID(), "subject", is.Issuing().Subject.String())
		}
	}
}

// startRevocation serves the revocation of an issuing CA adopted while
// running: its first CRL made, then its CRL and OCSP answers served and
// kept current.
func (s *Server) startRevocation(ctx context.Context, is *issuance.IssuerKey) error {
	opts := s.revOpts
	opts.Signer = is
	svc, err := revocation.New(opts)
	if err != nil {
		return err
	}
	if err := svc.Refresh(ctx); err != nil {
		return fmt.Errorf("the first CRL of the new issuing CA: %w", err)
	}
	s.revocation.Add(svc)
	s.revocationWG.Go(func() { svc.Run(ctx) })
	return nil
}
