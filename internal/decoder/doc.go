// Package decoder is containerd's stream processor for encrypted layers:
// the encrypted blob arrives on stdin, the decryption payload on fd 3, and
// the plain blob leaves on stdout. It does only what that path needs, since
// containerd starts one decoder process per encrypted layer.
package decoder
