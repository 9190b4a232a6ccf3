package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/imgcrypt/imgcrypt/internal/registry"
)

// registryOptions are the flags of every command that talks to a
// registry, spelled as nerdctl and skopeo spell them.
type registryOptions struct {
	registry.Options
	passwordStdin bool
}

func (o *registryOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.PlainHTTP, "plain-http", false, "talk to the registry over plain HTTP")
	f.BoolVar(&o.Insecure, "insecure", false, "accept any TLS certificate from the registry")
	f.StringVar(&o.CAFile, "ca-file", "", "CA certificate (PEM) to trust besides the system's")
	f.StringVar(&o.CertFile, "cert-file", "", "client certificate (PEM) for mutual TLS")
	f.StringVar(&o.KeyFile, "key-file", "", "client certificate's private key (PEM)")
	f.StringVar(&o.HostsDir, "hosts-dir", "", "containerd hosts.toml directory (DIR/HOST/hosts.toml)")
	f.StringVarP(&o.Username, "user", "u", "", "registry user name (default: the docker configuration's credentials)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the registry password from standard input")
}

// prepare checks the flags and fills Password from stdin or a terminal
// prompt, never from the command line, where every user of the machine
// could see it.
func (o *registryOptions) prepare(cmd *cobra.Command) error {
	if err := o.Validate(); err != nil {
		return usagef(cmd, "%v", err)
	}
	if o.passwordStdin && o.Username == "" {
		return usagef(cmd, "--password-stdin needs --user")
	}
	if o.Username == "" {
		return nil
	}
	if o.passwordStdin {
		pw, err := readPasswordLine(cmd.InOrStdin())
		if err != nil {
			return err
		}
		o.Password = pw
		return nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return usagef(cmd, "--user needs --password-stdin when standard input is not a terminal")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
	pw, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return fmt.Errorf("reading the password: %w", err)
	}
	o.Password = string(pw)
	return nil
}

func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty password on standard input")
	}
	return line, nil
}

// pullPlatforms is what --platform and --all-platforms select: none
// stands for every platform, and the default is this machine's, as for
// containerd and nerdctl.
func pullPlatforms(cmd *cobra.Command, list []string, all bool) ([]ocispec.Platform, error) {
	if all {
		if len(list) > 0 {
			return nil, usagef(cmd, "--platform and --all-platforms exclude each other")
		}
		return nil, nil
	}
	if len(list) == 0 {
		return []ocispec.Platform{platforms.DefaultSpec()}, nil
	}
	ps, err := platforms.ParseAll(list)
	if err != nil {
		return nil, usagef(cmd, "invalid --platform: %v", err)
	}
	return ps, nil
}

func newPushCommand(g *globalOptions) *cobra.Command {
	o := &registryOptions{}
	var platformList []string
	cmd := &cobra.Command{
		Use:   "push [flags] NAME [REMOTE]",
		Short: "Push an image to a registry",
		Long: `Push image NAME from the store to its registry, or to REMOTE: the whole image,
every platform it has, or with --platform only that platform's manifest.
Encrypted images push as they are. Blobs the registry already has are not uploaded
again, so a push that was interrupted finishes when run again.

Credentials come from the docker configuration ($DOCKER_CONFIG or
~/.docker/config.json, and its credential helpers), as 'imgcrypt login'
stores them, or from --user with --password-stdin.`,
		Example: `  imgcrypt push registry.example.com/team/app:enc
  imgcrypt push --platform linux/arm64 app:enc registry.example.com/team/app:enc-arm64
  imgcrypt push app:enc 127.0.0.1:5000/app:enc --plain-http
  echo "$TOKEN" | imgcrypt push -u ci --password-stdin app:enc registry.example.com/app:enc`,
		Args: usage(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(platformList) > 1 {
				return usagef(cmd, "push one --platform, or the whole image")
			}
			if err := o.prepare(cmd); err != nil {
				return err
			}
			s, img, err := g.openImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			remote := img.Name
			if len(args) == 2 {
				if remote, err = normalizeName(args[1]); err != nil {
					return err
				}
			}
			root := img.Target
			if len(platformList) == 1 {
				p, err := platforms.Parse(platformList[0])
				if err != nil {
					return usagef(cmd, "invalid --platform: %v", err)
				}
				if root, err = registry.Narrow(cmd.Context(), s.Content(), root, p); err != nil {
					return err
				}
			}
			bar := newProgress(cmd.ErrOrStderr(), "pushing", g.quiet)
			bar.Start(0, 0)
			err = registry.Push(cmd.Context(), bar.counted(s.Content()), root, remote, o.Options)
			bar.Finish()
			if err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", remote, root.Digest)
			}
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringArrayVar(&platformList, "platform", nil, "push only this platform's manifest (default: the whole image)")
	return cmd
}

func newLoginCommand() *cobra.Command {
	o := &registryOptions{}
	cmd := &cobra.Command{
		Use:   "login [flags] REGISTRY",
		Short: "Log in to a registry",
		Long: `Check a user name and password against REGISTRY and store them in the docker
configuration ($DOCKER_CONFIG or ~/.docker/config.json, or its credential
helper), where imgcrypt, docker, nerdctl and skopeo all find them. The
password is read from standard input with --password-stdin, or prompted for
without echo; it is never taken from the command line.`,
		Example: `  imgcrypt login -u alice registry.example.com
  echo "$TOKEN" | imgcrypt login -u ci --password-stdin registry.example.com`,
		Args: usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Username == "" {
				return usagef(cmd, "give the user name with --user")
			}
			if o.HostsDir != "" {
				return usagef(cmd, "login does not read --hosts-dir; give the registry's CA with --ca-file")
			}
			if err := o.prepare(cmd); err != nil {
				return err
			}
			if err := registry.Login(cmd.Context(), args[0], o.Username, o.Password, o.Options); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s\n", args[0])
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

func newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "logout REGISTRY",
		Short:   "Forget the stored credentials of a registry",
		Example: `  imgcrypt logout registry.example.com`,
		Args:    usage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := registry.Logout(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("logging out of %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", args[0])
			return nil
		},
	}
}
