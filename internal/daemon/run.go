package daemon

import (
	"context"
	"fmt"
	"io"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/platforms"
	ocicfg "github.com/containers/ocicrypt/config"
)

// RunOptions configure Run.
type RunOptions struct {
	Platform    string
	Snapshotter string
	// Args replace the image's command when not empty.
	Args []string
	// Remove deletes the container and its snapshot after it exits.
	Remove bool
	// Decrypt holds the keys the payload carries to the stream processor.
	Decrypt *ocicfg.DecryptConfig
	// Authorize checks Decrypt against every encrypted layer first.
	Authorize bool

	Stdout, Stderr io.Writer
}

// Run unpacks img (decrypting it through the stream processor), runs it
// as container id with runc and returns the exit status of its process.
func Run(ctx context.Context, s *Store, img images.Image, id string, opts RunOptions) (int, error) {
	if opts.Authorize {
		if err := Authorize(ctx, s.client, img, opts.Platform, opts.Decrypt); err != nil {
			return 0, err
		}
	}
	if err := Unpack(ctx, s.client, img, opts.Platform, opts.Snapshotter, opts.Decrypt); err != nil {
		return 0, err
	}
	p, err := platforms.Parse(opts.Platform)
	if err != nil {
		return 0, err
	}
	image := containerd.NewImageWithPlatform(s.client, img, platforms.Only(p))
	spec := []oci.SpecOpts{oci.WithImageConfig(image)}
	if len(opts.Args) > 0 {
		spec = append(spec, oci.WithProcessArgs(opts.Args...))
	}
	container, err := s.client.NewContainer(ctx, id,
		containerd.WithImage(image),
		containerd.WithSnapshotter(opts.Snapshotter),
		containerd.WithNewSnapshot(id, image),
		containerd.WithNewSpec(spec...))
	if err != nil {
		return 0, fmt.Errorf("creating container %s: %w", id, err)
	}
	if opts.Remove {
		defer container.Delete(context.WithoutCancel(ctx), containerd.WithSnapshotCleanup)
	}
	task, err := container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, opts.Stdout, opts.Stderr)))
	if err != nil {
		return 0, fmt.Errorf("creating task %s: %w", id, err)
	}
	defer task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exited, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	if err := task.Start(ctx); err != nil {
		return 0, fmt.Errorf("starting %s: %w", id, err)
	}
	select {
	case status := <-exited:
		code, _, err := status.Result()
		return int(code), err
	case <-ctx.Done():
		task.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		<-exited
		return 0, ctx.Err()
	}
}
