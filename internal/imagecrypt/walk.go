package imagecrypt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Filter selects the parts of an image an operation touches.
type Filter struct {
	// Platforms selects manifests; none selects every platform.
	Platforms []ocispec.Platform
	// Layers selects layers by index within each selected manifest; negative
	// indexes count from the top (-1 is the last layer). None selects all.
	Layers []int
}

// node is one index or manifest of the image being walked. Its raw fields
// are kept so that rewriting it changes only what the operation must.
type node struct {
	desc ocispec.Descriptor
	raw  *object

	// for an index: one entry per manifests[] element, nil when untouched
	childRaw []json.RawMessage
	children []*node

	// for a manifest
	platform string
	layerRaw []json.RawMessage
	layers   []ocispec.Descriptor
	tasks    []*task // per layer; nil when the layer is left alone
}

// task transforms one layer blob; tasks are shared by every manifest that
// selects the same blob, so the work is done once.
type task struct {
	where string // "layer 2 of linux/arm64", for messages
	src   ocispec.Descriptor
	out   ocispec.Descriptor
}

// selectLayer decides what a walk does with one layer: nil leaves it alone.
type selectLayer func(layer ocispec.Descriptor, explicit bool) (bool, error)

// walker plans an operation over an image before any layer is touched, so
// that bad platform or layer selections fail before work starts.
type walker struct {
	cs     content.Store
	filter Filter
	choose selectLayer

	platformSeen []bool
	available    []string
	tasks        map[string]*task
	order        []*task
	manifests    []*node
}

func newWalker(cs content.Store, filter Filter, choose selectLayer) *walker {
	return &walker{
		cs:           cs,
		filter:       filter,
		choose:       choose,
		platformSeen: make([]bool, len(filter.Platforms)),
		tasks:        map[string]*task{},
	}
}

// plan reads the image rooted at root and records the layer tasks.
func (w *walker) plan(ctx context.Context, root ocispec.Descriptor) (*node, error) {
	n, err := w.visit(ctx, root, nil)
	if err != nil {
		return nil, err
	}
	for i, seen := range w.platformSeen {
		if !seen {
			return nil, fmt.Errorf("image has no %s manifest (it has %s)",
				platforms.Format(w.filter.Platforms[i]), strings.Join(w.platformsOf(), ", "))
		}
	}
	return n, nil
}

func (w *walker) visit(ctx context.Context, desc ocispec.Descriptor, platform *ocispec.Platform) (*node, error) {
	switch {
	case images.IsIndexType(desc.MediaType):
		return w.visitIndex(ctx, desc)
	case images.IsManifestType(desc.MediaType):
		return w.visitManifest(ctx, desc, platform)
	default:
		return nil, fmt.Errorf("%s: unsupported media type %q", desc.Digest, desc.MediaType)
	}
}

func (w *walker) visitIndex(ctx context.Context, desc ocispec.Descriptor) (*node, error) {
	n := &node{desc: desc}
	var err error
	if n.raw, err = readJSON(ctx, w.cs, desc); err != nil {
		return nil, err
	}
	if err := n.raw.decode("manifests", &n.childRaw); err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	n.children = make([]*node, len(n.childRaw))
	for i, raw := range n.childRaw {
		var child ocispec.Descriptor
		if err := json.Unmarshal(raw, &child); err != nil {
			return nil, fmt.Errorf("index %s: manifest %d: %w", desc.Digest, i, err)
		}
		if !images.IsIndexType(child.MediaType) && !w.wantManifest(child) {
			continue
		}
		if _, err := w.cs.Info(ctx, child.Digest); errdefs.IsNotFound(err) {
			// An image pulled or exported for some platforms only: the
			// others stay as they are, unless asked for by name.
			if len(w.filter.Platforms) > 0 && child.Platform != nil {
				return nil, fmt.Errorf("the %s manifest is not in the store (the image was pulled or imported for other platforms)", platforms.Format(*child.Platform))
			}
			continue
		}
		if n.children[i], err = w.visit(ctx, child, child.Platform); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// wantManifest reports whether an index entry is selected by the platform
// filter; attestation manifests are never image content to encrypt.
func (w *walker) wantManifest(desc ocispec.Descriptor) bool {
	if !images.IsManifestType(desc.MediaType) || desc.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return false
	}
	if desc.Platform != nil {
		w.available = append(w.available, platforms.Format(*desc.Platform))
	}
	if len(w.filter.Platforms) == 0 {
		return true
	}
	if desc.Platform == nil {
		return false
	}
	wanted := false
	for i, p := range w.filter.Platforms {
		if platforms.NewMatcher(p).Match(*desc.Platform) {
			w.platformSeen[i] = true
			wanted = true
		}
	}
	return wanted
}

func (w *walker) visitManifest(ctx context.Context, desc ocispec.Descriptor, platform *ocispec.Platform) (*node, error) {
	n := &node{desc: desc}
	var err error
	if n.raw, err = readJSON(ctx, w.cs, desc); err != nil {
		return nil, err
	}
	if err := n.raw.decode("layers", &n.layerRaw); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	n.layers = make([]ocispec.Descriptor, len(n.layerRaw))
	for i, raw := range n.layerRaw {
		if err := json.Unmarshal(raw, &n.layers[i]); err != nil {
			return nil, fmt.Errorf("manifest %s: layer %d: %w", desc.Digest, i, err)
		}
	}
	if platform == nil {
		// A manifest at the root names its platform only in its config.
		p, err := w.configPlatform(ctx, n.raw)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		platform = p
		if p != nil {
			w.available = append(w.available, platforms.Format(*p))
			if !w.rootPlatformWanted(*p) {
				return nil, nil
			}
		}
	}
	n.platform = "unknown platform"
	if platform != nil {
		n.platform = platforms.Format(*platform)
	}
	w.manifests = append(w.manifests, n)
	return n, w.planLayers(n)
}

func (w *walker) rootPlatformWanted(p ocispec.Platform) bool {
	wanted := len(w.filter.Platforms) == 0
	for i, want := range w.filter.Platforms {
		if platforms.NewMatcher(want).Match(p) {
			w.platformSeen[i] = true
			wanted = true
		}
	}
	return wanted
}

func (w *walker) configPlatform(ctx context.Context, raw *object) (*ocispec.Platform, error) {
	var config ocispec.Descriptor
	if err := raw.decode("config", &config); err != nil {
		return nil, err
	}
	if !images.IsConfigType(config.MediaType) {
		return nil, nil
	}
	p, err := images.ConfigPlatform(ctx, w.cs, config)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return &p, nil
}

func (w *walker) planLayers(n *node) error {
	n.tasks = make([]*task, len(n.layers))
	explicit := map[int]bool{}
	for _, idx := range w.filter.Layers {
		i := idx
		if i < 0 {
			i += len(n.layers)
		}
		if i < 0 || i >= len(n.layers) {
			return fmt.Errorf("layer %d out of range: %s has %d layers", idx, n.platform, len(n.layers))
		}
		explicit[i] = true
	}
	for i, layer := range n.layers {
		if len(explicit) > 0 && !explicit[i] {
			continue
		}
		chosen, err := w.choose(layer, explicit[i])
		if err != nil {
			return fmt.Errorf("layer %d of %s: %w", i, n.platform, err)
		}
		if chosen {
			n.tasks[i] = w.task(layer, i, n.platform)
		}
	}
	return nil
}

func (w *walker) task(layer ocispec.Descriptor, index int, platform string) *task {
	annotations, _ := json.Marshal(layer.Annotations)
	key := layer.Digest.String() + layer.MediaType + string(annotations)
	if t, ok := w.tasks[key]; ok {
		return t
	}
	t := &task{where: fmt.Sprintf("layer %d of %s", index, platform), src: layer}
	w.tasks[key] = t
	w.order = append(w.order, t)
	return t
}

// assemble writes the manifests and indexes whose layers changed and returns
// the new descriptor of n, or n's own when nothing below it changed.
func (w *walker) assemble(ctx context.Context, n *node) (ocispec.Descriptor, error) {
	changed := false
	var children []ocispec.Descriptor
	if n.children != nil {
		for i, child := range n.children {
			var old ocispec.Descriptor
			if err := json.Unmarshal(n.childRaw[i], &old); err != nil {
				return ocispec.Descriptor{}, err
			}
			if child != nil {
				next, err := w.assemble(ctx, child)
				if err != nil {
					return ocispec.Descriptor{}, err
				}
				if next.Digest != old.Digest {
					if n.childRaw[i], err = patch(n.childRaw[i], map[string]any{
						"mediaType": next.MediaType, "digest": next.Digest, "size": next.Size,
					}); err != nil {
						return ocispec.Descriptor{}, err
					}
					old.MediaType, old.Digest, old.Size = next.MediaType, next.Digest, next.Size
					changed = true
				}
			}
			children = append(children, old)
		}
		if !changed {
			return n.desc, nil
		}
		n.raw.set("manifests", n.childRaw)
		return w.write(ctx, n, ociType(n.desc.MediaType), children)
	}

	for i, t := range n.tasks {
		if t == nil || sameDescriptor(t.out, n.layers[i]) {
			continue
		}
		fields := map[string]any{"mediaType": t.out.MediaType, "digest": t.out.Digest, "size": t.out.Size}
		if len(t.out.Annotations) > 0 {
			fields["annotations"] = t.out.Annotations
		} else {
			fields["annotations"] = nil
		}
		var err error
		if n.layerRaw[i], err = patch(n.layerRaw[i], fields); err != nil {
			return ocispec.Descriptor{}, err
		}
		n.layers[i] = t.out
		changed = true
	}
	if !changed {
		return n.desc, nil
	}
	mediaType := n.desc.MediaType
	var config ocispec.Descriptor
	if err := n.raw.decode("config", &config); err != nil {
		return ocispec.Descriptor{}, err
	}
	if images.IsDockerType(mediaType) {
		// ocicrypt's encrypted layer types exist only in OCI manifests, so
		// the whole manifest, its config and its other layers move over.
		mediaType = ocispec.MediaTypeImageManifest
		config.MediaType = ociType(config.MediaType)
		patched, err := patch(n.raw.values["config"], map[string]any{"mediaType": config.MediaType})
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("manifest %s config: %w", n.desc.Digest, err)
		}
		n.raw.set("config", patched)
		for i := range n.layerRaw {
			if oci := ociType(n.layers[i].MediaType); oci != n.layers[i].MediaType {
				var err error
				if n.layerRaw[i], err = patch(n.layerRaw[i], map[string]any{"mediaType": oci}); err != nil {
					return ocispec.Descriptor{}, err
				}
				n.layers[i].MediaType = oci
			}
		}
	}
	children = append(children, config)
	n.raw.set("layers", n.layerRaw)
	return w.write(ctx, n, mediaType, append(children, n.layers...))
}

// write stores n's rewritten JSON and returns its descriptor, which keeps
// the platform, annotations and other fields the parent gave it.
func (w *walker) write(ctx context.Context, n *node, mediaType string, children []ocispec.Descriptor) (ocispec.Descriptor, error) {
	if n.raw.has("mediaType") || mediaType != n.desc.MediaType {
		n.raw.set("mediaType", mediaType)
	}
	blob := marshal(n.raw)
	desc := n.desc
	desc.MediaType = mediaType
	desc.Digest = digest.FromBytes(blob)
	desc.Size = int64(len(blob))
	labels := gcLabels(children)
	ref := "imgcrypt-" + desc.Digest.String()
	if err := content.WriteBlob(ctx, w.cs, ref, bytes.NewReader(blob), desc, content.WithLabels(labels)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("writing %s: %w", desc.Digest, err)
	}
	return desc, nil
}

// gcLabels are the labels that keep a daemon's garbage collector from
// removing the children of a manifest or index it is given.
func gcLabels(children []ocispec.Descriptor) map[string]string {
	labels := map[string]string{}
	for i, child := range children {
		for _, key := range images.ChildGCLabels(child) {
			if strings.HasSuffix(key, ".") {
				key += strconv.Itoa(i)
			}
			labels[key] = child.Digest.String()
		}
	}
	return labels
}

func sameDescriptor(a, b ocispec.Descriptor) bool {
	if a.Digest != b.Digest || a.MediaType != b.MediaType || a.Size != b.Size || len(a.Annotations) != len(b.Annotations) {
		return false
	}
	for k, v := range a.Annotations {
		if b.Annotations[k] != v {
			return false
		}
	}
	return true
}

func readJSON(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) (*object, error) {
	blob, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", desc.Digest, err)
	}
	o, err := parseObject(blob)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid manifest or index: %w", desc.Digest, err)
	}
	return o, nil
}

// patch sets fields of a JSON object, keeping all others and their order;
// a nil value removes the field.
func patch(raw json.RawMessage, fields map[string]any) (json.RawMessage, error) {
	o, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("a descriptor is not a JSON object: %w", err)
	}
	// Fixed order, so the same patch always gives the same bytes.
	for _, k := range []string{"mediaType", "digest", "size", "annotations"} {
		if v, ok := fields[k]; ok {
			o.set(k, v)
		}
	}
	return marshal(o), nil
}

// platformsOf lists the distinct platforms the walk saw, in order.
func (w *walker) platformsOf() []string {
	var out []string
	for _, p := range w.available {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
