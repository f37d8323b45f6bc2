package pki

import (
	"crypto"
	"crypto/rsa"
	"math/big"
)

// signableRSABits are the RSA modulus sizes fleetca signs for: the sizes
// every device stack makes. Odd sizes are what broken or hand-made keys have.
var signableRSABits = map[int]bool{2048: true, 3072: true, 4096: true}

// smallPrimeGroups are the odd primes below 1000 in groups whose product fits
// in a word: a modulus is divided by each product once, and its remainder
// by each prime of the group, which costs far less than a GCD of big numbers.
var smallPrimeGroups = func() []primeGroup {
	var groups []primeGroup
	g := primeGroup{product: 1}
	for n := uint64(3); n < 1000; n += 2 {
		if !big.NewInt(int64(n)).ProbablyPrime(0) {
			continue
		}
		if g.product > (1<<63)/n {
			groups = append(groups, g)
			g = primeGroup{product: 1}
		}
		g.product *= n
		g.primes = append(g.primes, n)
	}
	return append(groups, g)
}()

type primeGroup struct {
	product uint64
	primes  []uint64
}

// hasSmallFactor reports whether an odd prime below 1000 divides n.
func hasSmallFactor(n *big.Int) bool {
	// QuoRem into the same quotient each time reuses its words; Mod would
	// make a quotient of n's size for each group.
	q, d, r := new(big.Int), new(big.Int), new(big.Int)
	for _, g := range smallPrimeGroups {
		q.QuoRem(n, d.SetUint64(g.product), r)
		rem := r.Uint64()
		for _, p := range g.primes {
			if rem%p == 0 {
				return true
			}
		}
	}
	return false
}

// fermatRounds is how far the search for factors close to the square root
// goes; keys whose primes are that close are broken in microseconds
// (Boulder's goodkey does the same).
const fermatRounds = 100

// CheckKeyToSign is CheckPublicKey plus the checks a CA makes before it
// certifies a key, after Boulder's goodkey: an RSA key has exponent 65537, a
// modulus of 2048, 3072 or 4096 bits that is odd, has no prime factor below
// 1000 and no two factors close enough for Fermat's method. ECDSA points are
// checked on the curve by the parser.
func CheckKeyToSign(pub crypto.PublicKey) error {
	if err := CheckPublicKey(pub); err != nil {
		return err
	}
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil
	}
	if k.E != 65537 {
		return errorf("RSA keys must have the public exponent 65537; this one has %d", k.E)
	}
	if bits := k.N.BitLen(); !signableRSABits[bits] {
		return errorf("RSA keys must have 2048, 3072 or 4096 bits; this one has %d", bits)
	}
	if k.N.Bit(0) == 0 {
		return errorf("the RSA modulus is even")
	}
	if hasSmallFactor(k.N) {
		return errorf("the RSA modulus has a small prime factor")
	}
	if fermatFactorable(k.N) {
		return errorf("the RSA modulus has factors too close to each other")
	}
	return nil
}

// fermatFactorable reports whether n = a² - b² for an a within fermatRounds
// of ⌈√n⌉, that is, whether n's factors lie close to its square root.
func fermatFactorable(n *big.Int) bool {
	a := new(big.Int).Sqrt(n)
	b2 := new(big.Int).Mul(a, a)
	if b2.Cmp(n) == 0 {
		return true
	}
	a.Add(a, big.NewInt(1))
	b2.Mul(a, a).Sub(b2, n)
	// b² grows by 2a+1 as a grows by one, and 2a+1 by two: tracking both
	// modulo squareModulus lets the residue filter turn away non-squares
	// without touching the big numbers.
	step := new(big.Int).Lsh(a, 1)
	step.Add(step, big.NewInt(1))
	m := big.NewInt(squareModulus)
	r := new(big.Int).Mod(b2, m).Uint64()
	d := new(big.Int).Mod(step, m).Uint64()
	for i := 0; i < fermatRounds; i++ {
		if maybeSquare(r) {
			x := new(big.Int).Mul(step, big.NewInt(int64(i)))
			x.Add(x, big.NewInt(int64(i)*int64(i-1)))
			x.Add(x, b2)
			b := new(big.Int).Sqrt(x)
			if b.Mul(b, b).Cmp(x) == 0 {
				return true
			}
		}
		r = (r + d) % squareModulus
		d = (d + 2) % squareModulus
	}
	return false
}

// squareModulus is 64·63·65·11: a number's residues modulo each factor tell
// most non-squares from squares.
const squareModulus = 64 * 63 * 65 * 11

var squareResidues = func() map[uint64][]bool {
	rs := map[uint64][]bool{}
	for _, m := range []uint64{64, 63, 65, 11} {
		rs[m] = make([]bool, m)
		for i := uint64(0); i < m; i++ {
			rs[m][i*i%m] = true
		}
	}
	return rs
}()

// maybeSquare is false when r, a number's residue modulo squareModulus, shows
// that the number is no square.
func maybeSquare(r uint64) bool {
	return squareResidues[64][r%64] && squareResidues[63][r%63] && squareResidues[65][r%65] && squareResidues[11][r%11]
}
