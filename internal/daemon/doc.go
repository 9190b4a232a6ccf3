// Package daemon is imgcrypt's containerd side: an image store over a
// containerd daemon's socket, and pulling, unpacking and running encrypted
// images there with the decryption payload attached for the stream
// processor.
package daemon
