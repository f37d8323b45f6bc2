//go:build cgo

package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/fleetca/fleetca/internal/keys"
)

// curveOIDs are the named curves of the keys Import takes (RFC 5480).
var curveOIDs = map[elliptic.Curve]asn1.ObjectIdentifier{
	elliptic.P256(): {1, 2, 840, 10045, 3, 1, 7},
	elliptic.P384(): {1, 3, 132, 0, 34},
	elliptic.P521(): {1, 3, 132, 0, 35},
}

// Import stores key in the token as the key labelled for role: a private
// key marked sensitive and not extractable, and its public key, under one
// new ID. It is for moving keys that began as files into a token; the
// caller removes the files once the token signs with them. Import refuses
// a role whose label the token holds already.
func (t *Token) Import(role string, key crypto.Signer) error {
	label := t.uri.Label(role)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		return fmt.Errorf("%w: the PKCS#11 token is closed", keys.ErrUnavailable)
	}
	existing, err := t.ctx.FindKeyPairs(nil, []byte(label))
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return fmt.Errorf("the token holds a key labelled %q already", label)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	common := func(class uint) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
	}
	private := append(common(pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true))
	public := append(common(pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		oid, ok := curveOIDs[k.Curve]
		if !ok {
			return errors.New("the key's curve is not one a token takes here")
		}
		params, err := asn1.Marshal(oid)
		if err != nil {
			return err
		}
		pub, err := k.PublicKey.ECDH()
		if err != nil {
			return err
		}
		point, err := asn1.Marshal(pub.Bytes()) // the uncompressed point, in an OCTET STRING
		if err != nil {
			return err
		}
		d, err := k.Bytes() // the scalar, fixed-length
		if err != nil {
			return err
		}
		private = append(private,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, d))
		public = append(public,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point))
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return errors.New("the RSA key has more than two primes")
		}
		k.Precompute()
		e := []byte{byte(k.E >> 16), byte(k.E >> 8), byte(k.E)}
		private = append(private,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, k.D.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, k.Primes[0].Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, k.Primes[1].Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, k.Precomputed.Dp.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, k.Precomputed.Dq.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, k.Precomputed.Qinv.Bytes()))
		public = append(public,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e))
	default:
		return fmt.Errorf("a %T cannot be imported", key)
	}
	mutating.Lock()
	defer mutating.Unlock()
	return t.createObjects(private, public)
}

// createObjects creates the objects in a session of the token's own. The
// module is initialised already (the token is open), and so is the login,
// which PKCS#11 keeps per application; neither is undone here.
func (t *Token) createObjects(templates ...[]*pkcs11.Attribute) error {
	p := pkcs11.New(t.uri.ModulePath)
	if p == nil {
		return fmt.Errorf("loading the PKCS#11 module %s", t.uri.ModulePath)
	}
	defer p.Destroy()
	slot, err := t.slot(p)
	if err != nil {
		return err
	}
	session, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	defer p.CloseSession(session)
	if err := p.Login(session, pkcs11.CKU_USER, t.pin); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		return err
	}
	var made []pkcs11.ObjectHandle
	for _, tmpl := range templates {
		h, err := p.CreateObject(session, tmpl)
		if err != nil {
			for _, h := range made {
				p.DestroyObject(session, h)
			}
			return fmt.Errorf("creating the key in the token: %w", err)
		}
		made = append(made, h)
	}
	return nil
}

// slot finds the slot of the token the URI names.
func (t *Token) slot(p *pkcs11.Ctx) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, err
	}
	for _, s := range slots {
		if t.uri.SlotID != nil {
			if uint(*t.uri.SlotID) == s {
				return s, nil
			}
			continue
		}
		info, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if (t.uri.TokenLabel != "" && info.Label == t.uri.TokenLabel) || (t.uri.TokenSerial != "" && info.SerialNumber == t.uri.TokenSerial) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("the PKCS#11 token %s is not there", describe(t.uri))
}
