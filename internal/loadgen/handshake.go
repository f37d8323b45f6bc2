package loadgen

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
)

// transcript stands for what a handshake's signatures sign.
var transcript = sha256.Sum256([]byte("handshake transcript"))

// serverHandshake is the endpoint's crypto in one TLS 1.3 handshake with a
// client certificate, as fleetca's device endpoint does it: an X25519 key
// share and shared secret (the X25519 the load generator and device SDKs
// offer), a signature with the endpoint's P-256 key, and the verification
// of the client's signature and of its certificate's.
type serverHandshake struct {
	endpoint  *ecdsa.PrivateKey
	client    device
	clientSig []byte
}

// newServerHandshake prepares a handshake with a client of a key of
// csrKey's kind; what the client signs is signed here, beforehand.
func newServerHandshake(csrKey string) (*serverHandshake, error) {
	endpoint, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	client, err := newDevice(csrKey)
	if err != nil {
		return nil, err
	}
	sig, err := client.key.Sign(rand.Reader, transcript[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &serverHandshake{endpoint: endpoint, client: client, clientSig: sig}, nil
}

// run does the endpoint's share of the handshake; the client's
// certificate is signed by the issuing CA's key, signer.
func (h *serverHandshake) run(chain *chainCheck, signer crypto.Signer) error {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if _, err := priv.ECDH(priv.PublicKey()); err != nil {
		return err
	}
	if _, err := h.endpoint.Sign(rand.Reader, transcript[:], crypto.SHA256); err != nil {
		return err
	}
	if !ecdsaOrRSAVerify(h.client.key.Public(), transcript[:], h.clientSig) {
		return errors.New("the client's signature does not verify")
	}
	return chain.verify(signer)
}

// chainCheck is the check of a client certificate's chain: the
// verification of one signature of the issuing CA. The signature is made
// once, the first time, and not counted after.
type chainCheck struct{ sig []byte }

func (c *chainCheck) verify(signer crypto.Signer) error {
	if c.sig == nil {
		sig, err := signer.Sign(rand.Reader, transcript[:], crypto.SHA256)
		if err != nil {
			return err
		}
		c.sig = sig
	}
	if !ecdsaOrRSAVerify(signer.Public(), transcript[:], c.sig) {
		return errors.New("the chain's signature does not verify")
	}
	return nil
}

func ecdsaOrRSAVerify(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	}
	return false
}
