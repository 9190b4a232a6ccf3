// Package imagecrypt encrypts, decrypts and describes the layers of an image
// held in a containerd content store. It walks an image from its root
// descriptor (index, manifest list or manifest), transforms the selected
// layers in parallel and writes new manifests and indexes that keep every
// field it did not have to change.
package imagecrypt
