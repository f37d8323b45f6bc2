// Package token keeps fleetca's CA keys in a PKCS#11 token (a hardware
// security module, or SoftHSM): the keys are generated inside it, marked
// sensitive and not extractable, and used through crypto.Signer, so a
// private key never exists in fleetca's memory, files or database.
//
// keys.ParseTokenURI reads the token's PKCS#11 URI; Open opens it. Loading
// a PKCS#11 module needs cgo: a build without it answers every call with
// an error saying so.
package token
