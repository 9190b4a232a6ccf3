// Package keys turns the key and recipient strings a user types on the
// command line (or drops into a node key directory) into ocicrypt
// encryption and decryption configs.
//
// Recipients name who can decrypt: jwe:FILE (RSA or EC public key as PEM,
// DER or JWK), pkcs7:FILE (x509 certificate), pgp:EMAIL-OR-NAME (looked up
// in the gpg public keyring), pkcs11:FILE (pkcs11 key yaml or public key)
// and provider:NAME[:PARAMS] (an ocicrypt key provider).
//
// Keys are private keys: FILE, FILE:PASSWORD, FILE:pass=PASSWORD,
// FILE:file=PASSWORDFILE, FILE:fd=N or provider:NAME[:PARAMS]. A file may
// hold a PEM, DER or JWK private key (PKCS#1, PKCS#8 or SEC1), a pkcs11 key
// yaml, a gpg secret keyring or an x509 certificate (used for pkcs7).
//
// Errors name the file or recipient at fault but never contain key bytes
// or passwords.
package keys
