// Package certlint lints certificates with zlint: the lints fleetca holds
// every certificate it issues to, and the findings that refuse one.
package certlint

import (
	"sort"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Registry holds the zlint lints every certificate fleetca issues must
// pass: the RFC sources (RFC 5280 and the algorithm RFCs) and the community
// lints. The CA/Browser Forum's and the root stores' policies are left out
// on purpose: they govern publicly trusted TLS servers, and the AWS IoT
// profile (no SAN, no revocation pointers unless --public-url, expiry in
// 2049) breaks them by design.
//
// One community lint is left out too: e_ecdsa_small_private_key searches
// for a device key's private scalar below 2^16, about 1.1 ms of elliptic
// curve arithmetic per certificate. Its input, the device's public key,
// is a per-request field; a device with a guessable key harms itself
// only, and the key's structure is checked by pki.CheckKeyToSign.
func Registry() (lint.Registry, error) {
	return lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC8813, lint.Community},
		ExcludeNames:   []string{"e_ecdsa_small_private_key"},
	})
}

// Linter lints certificates with a registry.
type Linter struct {
	registry lint.Registry
	// least is the least status reported.
	least lint.LintStatus
}

// New returns a Linter reporting errors and fatal findings (what refuses
// a certificate) with Registry's lints; with warnings set, warnings too.
func New(warnings bool) (*Linter, error) {
	reg, err := Registry()
	if err != nil {
		return nil, err
	}
	least := lint.Error
	if warnings {
		least = lint.Warn
	}
	return &Linter{registry: reg, least: least}, nil
}

// Lint returns the findings on the DER certificate, each "name (details)",
// sorted; none means it passes.
func (l *Linter) Lint(der []byte) ([]string, error) {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	var findings []string
	for name, r := range zlint.LintCertificateEx(c, l.registry).Results {
		if r.Status >= l.least {
			findings = append(findings, name+" ("+r.Details+")")
		}
	}
	sort.Strings(findings)
	return findings, nil
}
