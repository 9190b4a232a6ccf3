package imagecrypt

import (
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/core/images"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const encryptedSuffix = "+encrypted"

// dockerToOCI maps Docker schema 2 media types to the OCI ones an encrypted
// image must use: ocicrypt only defines OCI encrypted layer types.
var dockerToOCI = map[string]string{
	images.MediaTypeDockerSchema2Layer:     ocispec.MediaTypeImageLayer,
	images.MediaTypeDockerSchema2LayerGzip: ocispec.MediaTypeImageLayerGzip,
	images.MediaTypeDockerSchema2LayerZstd: ocispec.MediaTypeImageLayerZstd,
	//lint:ignore SA1019 still found in the wild
	images.MediaTypeDockerSchema2LayerForeign: ocispec.MediaTypeImageLayerNonDistributable,
	//lint:ignore SA1019 still found in the wild
	images.MediaTypeDockerSchema2LayerForeignGzip: ocispec.MediaTypeImageLayerNonDistributableGzip,
	images.MediaTypeDockerSchema2Config:           ocispec.MediaTypeImageConfig,
	images.MediaTypeDockerSchema2Manifest:         ocispec.MediaTypeImageManifest,
	images.MediaTypeDockerSchema2ManifestList:     ocispec.MediaTypeImageIndex,
}

// ociType returns the OCI equivalent of a Docker media type, or mt itself.
func ociType(mt string) string {
	if oci, ok := dockerToOCI[mt]; ok {
		return oci
	}
	return mt
}

// isEncryptedType reports whether mt is an ocicrypt encrypted layer type.
func isEncryptedType(mt string) bool {
	return strings.HasSuffix(mt, encryptedSuffix)
}

// encryptedType returns the encrypted media type for a plain layer type.
func encryptedType(mt string) (string, error) {
	mt = ociType(mt)
	if isEncryptedType(mt) {
		return mt, nil
	}
	if !strings.HasPrefix(mt, "application/vnd.oci.image.layer.") {
		return "", fmt.Errorf("cannot encrypt a layer of media type %q", mt)
	}
	return mt + encryptedSuffix, nil
}

// plainType returns the media type a layer had before encryption.
func plainType(mt string) string {
	return strings.TrimSuffix(mt, encryptedSuffix)
}

// isCompressedType reports whether layers of type mt are gzip or zstd.
func isCompressedType(mt string) bool {
	return strings.HasSuffix(mt, "+gzip") || strings.HasSuffix(mt, "+zstd")
}
