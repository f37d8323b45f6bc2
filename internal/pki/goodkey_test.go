package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"
)

func TestCheckKeyToSign(t *testing.T) {
	good, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	modulus := func(n *big.Int, e int) *rsa.PublicKey { return &rsa.PublicKey{N: n, E: e} }

	// Two primes of 1024 bits right next to each other.
	p, err := rand.Prime(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	q := new(big.Int).Add(p, big.NewInt(2))
	for !q.ProbablyPrime(20) {
		q.Add(q, big.NewInt(2))
	}
	close := new(big.Int).Mul(p, q)
	// A 2048-bit modulus with the factor 997.
	small := new(big.Int).Lsh(big.NewInt(1), 2047)
	small.Add(small, new(big.Int).Sub(big.NewInt(997), new(big.Int).Mod(small, big.NewInt(997))))
	if small.Bit(0) == 0 {
		small.Add(small, big.NewInt(997))
	}
	even := new(big.Int).Add(good.N, big.NewInt(1))
	odd2056, err := rsa.GenerateKey(rand.Reader, 2056)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		key     any
		wantErr string
	}{
		{"RSA-2048", &good.PublicKey, ""},
		{"P-256", &p256.PublicKey, ""},
		{"exponent 3", modulus(good.N, 3), "exponent 65537"},
		{"exponent 65539", modulus(good.N, 65539), "exponent 65537"},
		{"2056 bits", &odd2056.PublicKey, "2048, 3072 or 4096 bits"},
		{"even modulus", modulus(even, 65537), "even"},
		{"small factor", modulus(small, 65537), "small prime factor"},
		{"close factors", modulus(close, 65537), "too close"},
		{"1024 bits", modulus(new(big.Int).Rsh(good.N, 1024), 65537), "2048 to 8192 bits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeyToSign(tc.key)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckKeyToSign: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsError(err) {
				t.Fatalf("CheckKeyToSign error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func BenchmarkCheckKeyToSign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := CheckKeyToSign(&key.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}
