// Package layercrypt unwraps the key of one encrypted layer and decrypts its
// data stream, in the ocicrypt wire format (AES-256-CTR, then HMAC-SHA256
// over the ciphertext). It is the hot path of both image decryption and the
// containerd stream processor, so it carries no store or CLI dependencies.
package layercrypt
