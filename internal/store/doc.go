// Package store is imgcrypt's embedded image store: a plain OCI image layout
// directory (blobs/sha256, index.json, oci-layout) that skopeo, oras and
// umoci can read and write as well, so images never need an export step to
// leave imgcrypt or an import step to enter it.
package store
