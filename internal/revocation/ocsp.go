package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/keys"
)

// Answer is an OCSP response ready to send. For a successful answer
// ThisUpdate and NextUpdate are its validity, which HTTP caching follows;
// an error answer (malformedRequest, unauthorized, tryLater,
// internalError) has neither and must not be cached.
type Answer struct {
	DER                    []byte
	ThisUpdate, NextUpdate time.Time
}

// Cacheable reports whether the answer may be kept by HTTP caches.
func (a Answer) Cacheable() bool { return !a.NextUpdate.IsZero() }

type cacheKey struct {
	hash   crypto.Hash
	serial string
}

// answer is a pre-signed OCSP answer.
type answer struct {
	Answer
	status string
	// renew is when it is signed again: halfway through its validity.
	renew time.Time
}

// Respond answers the DER OCSP request raw about a certificate of the
// issuer: good, revoked (with time and reason) or unknown, from the CRL
// being served. Requests that do not parse get malformedRequest, requests
// about another issuer unauthorized (RFC 5019 2.2.3), and a failure of the
// database or the key tryLater or internalError; Respond never fails.
// Answers about known certificates are pre-signed and reused until half
// their validity has passed or the certificate's entry changes.
func (s *Service) Respond(ctx context.Context, raw []byte) Answer {
	req, err := ocsp.ParseRequest(raw)
	if err != nil {
		return s.refuse("malformed", ocsp.MalformedRequestErrorResponse)
	}
	if !s.names(req) {
		return s.refuse("unauthorized", ocsp.UnauthorizedErrorResponse)
	}
	return s.respond(ctx, req)
}

// names reports whether req asks about this service's issuer.
func (s *Service) names(req *ocsp.Request) bool {
	hashes, ok := s.issuer[req.HashAlgorithm]
	return ok && bytes.Equal(hashes.name, req.IssuerNameHash) && bytes.Equal(hashes.key, req.IssuerKeyHash)
}

// respond answers a parsed request about this service's issuer.
func (s *Service) respond(ctx context.Context, req *ocsp.Request) Answer {
	st := s.state.Load()
	if st == nil || req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
		if st == nil {
			return s.refuse("tryLater", ocsp.TryLaterErrorResponse)
		}
		return s.refuse("malformed", ocsp.MalformedRequestErrorResponse)
	}
	key := cacheKey{req.HashAlgorithm, req.SerialNumber.Text(16)}
	now := s.opts.Now()
	s.cacheMu.Lock()
	cached := s.cache[key]
	s.cacheMu.Unlock()
	if cached != nil && now.Before(cached.renew) {
		s.observe(cached.status, true)
		return cached.Answer
	}

	tmpl := ocsp.Response{
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now.UTC().Truncate(time.Second),
		IssuerHash:   req.HashAlgorithm,
	}
	tmpl.NextUpdate = tmpl.ThisUpdate.Add(s.opts.OCSPValidity)
	status := "good"
	if e, revoked := st.revoked[key.serial]; revoked {
		status = "revoked"
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, e.at, e.reason
	} else {
		issued, err := s.opts.Store.IssuedSerial(ctx, s.issuerID, key.serial)
		if err != nil {
			s.opts.Logger.Warn("revocation: OCSP could not read the registry", "serial", key.serial, "err", err)
			return s.refuse("tryLater", ocsp.TryLaterErrorResponse)
		}
		if !issued {
			// Never cached: anyone can ask about endless serials, and the
			// answers would crowd out the ones that matter. Signing them
			// is bounded instead (unknownRate); beyond it, the unsigned
			// tryLater costs nothing.
			if !s.unknown.Allow() {
				return s.refuse("tryLater", ocsp.TryLaterErrorResponse)
			}
			status = "unknown"
			tmpl.Status = ocsp.Unknown
		}
	}
	der, err := s.opts.Signer.SignOCSP(ctx, tmpl)
	if errors.Is(err, keys.ErrUnavailable) {
		// The key's token is out of reach for now: the client may ask again.
		s.opts.Logger.Warn("revocation: the CA key cannot sign an OCSP answer now", "serial", key.serial, "err", err)
		return s.refuse("tryLater", ocsp.TryLaterErrorResponse)
	}
	if err != nil {
		s.opts.Logger.Error("revocation: signing an OCSP answer failed", "serial", key.serial, "err", err)
		return s.refuse("internalError", ocsp.InternalErrorErrorResponse)
	}
	a := &answer{Answer: Answer{DER: der, ThisUpdate: tmpl.ThisUpdate, NextUpdate: tmpl.NextUpdate}, status: status,
		renew: tmpl.ThisUpdate.Add(s.opts.OCSPValidity / 2)}
	if status != "unknown" {
		s.cacheMu.Lock()
		// Only an answer made from the list still served is kept (see adopt).
		if s.state.Load() == st {
			if _, ok := s.cache[key]; !ok && len(s.cache) >= s.opts.OCSPCache {
				s.evictOne()
			}
			s.cache[key] = a
		}
		s.cacheMu.Unlock()
	}
	s.observe(status, false)
	return a.Answer
}

func (s *Service) refuse(status string, der []byte) Answer {
	s.observe(status, false)
	return Answer{DER: der}
}

func (s *Service) observe(status string, cached bool) {
	if o := s.opts.Observer; o != nil {
		o.ObserveOCSP(status, cached)
	}
}

// dropCached forgets the answers about a serial, under every hash. The
// caller holds cacheMu.
func (s *Service) dropCached(serial string) {
	for h := range s.issuer {
		delete(s.cache, cacheKey{h, serial})
	}
}

// evictOne makes room in a full cache by dropping an answer Go's map
// iteration picks at random. The caller holds cacheMu.
func (s *Service) evictOne() {
	for k := range s.cache {
		delete(s.cache, k)
		return
	}
}

// subjectPublicKeyBits returns the subjectPublicKey BIT STRING's bytes of a
// SubjectPublicKeyInfo: what an OCSP CertID's issuerKeyHash hashes.
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	} else if len(rest) > 0 {
		return nil, errors.New("revocation: trailing data after the issuer's public key")
	}
	return info.PublicKey.Bytes, nil
}
