// Package hsm sets up and inspects PKCS#11 tokens for imgcrypt's pkcs11
// keys: it initializes a token (SoftHSM or a real HSM), generates an RSA
// key pair in it, and writes the files ocicrypt needs to use that key (the
// pkcs11 key yaml, the public key, the PIN file and the OCICRYPT_CONFIG
// module policy); it also lists tokens and key objects without showing
// any secret.
//
// Talking to a module needs cgo: a build without it still compiles, and
// Init and List then return ErrNeedsCgo (Supported is false).
package hsm
