package loadgen

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// rawKeyRuns is how many RSA keys the raw cost of CreateKeysAndCertificate
// averages over: about five seconds of one core.
const rawKeyRuns = 100

// rawCost runs op on one goroutine for about half a second, and at least
// minRuns times, against a fresh issuing CA with a caKey key and returns its
// CPU time per run.
func rawCost(caKey string, minRuns int, op func(*x509.Certificate, crypto.Signer) error) (time.Duration, error) {
	key, err := newKey(caKey)
	if err != nil {
		return 0, err
	}
	return rawCostWith(key, minRuns, op)
}

// rawCostWith is rawCost with the CA's key given.
func rawCostWith(key crypto.Signer, minRuns int, op func(*x509.Certificate, crypto.Signer) error) (time.Duration, error) {
	ca, err := selfSignedCA("raw cost CA", key)
	if err != nil {
		return 0, err
	}
	begin, n := processCPU(), 0
	for deadline := time.Now().Add(500 * time.Millisecond); n < minRuns || time.Now().Before(deadline); n++ {
		if err := op(ca, key); err != nil {
			return 0, err
		}
	}
	return (processCPU() - begin) / time.Duration(n), nil
}

// selfSignedCA is a CA certificate for key, valid for a day (from an hour
// ago), for the load generator's own signing and handshakes.
func selfSignedCA(name string, key crypto.Signer) (*x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func signAndHash(pub crypto.PublicKey, ca *x509.Certificate, signer crypto.Signer) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "raw"},
		NotBefore: time.Now(), NotAfter: time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}, ca, pub, signer)
	if err != nil {
		return err
	}
	sha256.Sum256(der)
	return nil
}
