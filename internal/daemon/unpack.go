package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/diff"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/containerd/typeurl/v2"
	"github.com/containers/ocicrypt/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/imgcrypt/imgcrypt/internal/decoder"
	"github.com/imgcrypt/imgcrypt/internal/imagecrypt"
	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

// WithDecryptPayload attaches, for every layer containerd applies, the
// payload the ctd-decoder stream processor needs: the keys in dc (none in
// the node-key model, where the decoder has its own) and the layer's
// descriptor, whose annotations carry the wrapped keys.
func WithDecryptPayload(dc *config.DecryptConfig) diff.ApplyOpt {
	if dc == nil {
		dc = &config.DecryptConfig{}
	}
	return func(_ context.Context, desc ocispec.Descriptor, c *diff.ApplyConfig) error {
		value, err := json.Marshal(decoder.Payload{DecryptConfig: *dc, Descriptor: desc})
		if err != nil {
			return err
		}
		payload := &anypb.Any{TypeUrl: decoder.PayloadTypeURL, Value: value}
		if c.ProcessorPayloads == nil {
			c.ProcessorPayloads = map[string]typeurl.Any{}
		}
		for _, p := range decoder.Processors {
			c.ProcessorPayloads[p.ID] = payload
		}
		return nil
	}
}

// Unpack unpacks img for platform into snapshotter, decrypting its layers
// through the stream processor.
func Unpack(ctx context.Context, client *containerd.Client, img images.Image, platform string, snapshotter string, dc *config.DecryptConfig) error {
	p, err := platforms.Parse(platform)
	if err != nil {
		return err
	}
	image := containerd.NewImageWithPlatform(client, img, platforms.Only(p))
	if err := image.Unpack(ctx, snapshotter, containerd.WithUnpackApplyOpts(WithDecryptPayload(dc))); err != nil {
		return fmt.Errorf("unpacking %s: %w", img.Name, err)
	}
	return nil
}

// Authorize checks, without reading layer data, that dc opens every
// encrypted layer of img for platform: a NoKeyError names the first that
// it does not.
func Authorize(ctx context.Context, client *containerd.Client, img images.Image, platform string, dc *config.DecryptConfig) error {
	p, err := platforms.Parse(platform)
	if err != nil {
		return err
	}
	layers, err := imagecrypt.Layers(ctx, client.ContentStore(), img.Target, imagecrypt.Filter{Platforms: []ocispec.Platform{p}})
	if err != nil {
		return err
	}
	for _, l := range layers {
		layer := l.Descriptor
		if !layercrypt.IsEncrypted(layer) {
			continue
		}
		if _, err := layercrypt.Unwrap(dc, layer); err != nil {
			where := fmt.Sprintf("layer %d of %s", l.Index, l.Platform)
			if errors.Is(err, layercrypt.ErrNoKey) {
				return fmt.Errorf("not authorized: %w", &imagecrypt.NoKeyError{Where: where, Schemes: layercrypt.Schemes(layer), Detail: layercrypt.NoKeyDetail(err)})
			}
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}
