package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/imgcrypt/imgcrypt/internal/hsm"
)

func newHSMCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "Set up and list PKCS#11 tokens (SoftHSM or a hardware HSM) for pkcs11 keys",
		Long: `Keep an image key in a PKCS#11 token, where its private half never leaves the
token: 'hsm init' creates a token and an RSA key pair in it and writes the
files that --recipient pkcs11:FILE and --key FILE take; 'hsm list' shows the
tokens and their keys. Both need imgcrypt built with cgo. See docs/hsm.md.

PINs are never taken from the command line: give them with --pin-file or
--pin-stdin, or type them at the prompt (without echo) on a terminal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newHSMInitCommand(), newHSMListCommand())
	return cmd
}

// pinOptions are the ways of giving a token's user PIN.
type pinOptions struct {
	pinFile  string
	pinStdin bool
}

func (o *pinOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.pinFile, "pin-file", "", "read the token's user PIN from this file (one line)")
	f.BoolVar(&o.pinStdin, "pin-stdin", false, "read the token's user PIN from standard input (one line)")
}

// read returns the PIN from --pin-file, --pin-stdin or a prompt without
// echo; confirm asks twice at the prompt. Nothing here ever prints a PIN.
func (o *pinOptions) read(cmd *cobra.Command, prompt string, confirm bool) (string, error) {
	switch {
	case o.pinFile != "" && o.pinStdin:
		return "", usagef(cmd, "--pin-file and --pin-stdin exclude each other")
	case o.pinFile != "":
		return readPINFile(o.pinFile, "--pin-file")
	case o.pinStdin:
		return readPINLine(cmd.InOrStdin())
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usagef(cmd, "give the PIN with --pin-file or --pin-stdin (standard input is not a terminal)")
	}
	pin, err := promptPIN(cmd.ErrOrStderr(), fd, prompt)
	if err != nil || !confirm {
		return pin, err
	}
	again, err := promptPIN(cmd.ErrOrStderr(), fd, "Repeat the PIN: ")
	if err != nil {
		return "", err
	}
	if again != pin {
		return "", errors.New("the PINs do not match")
	}
	return pin, nil
}

func promptPIN(w io.Writer, fd int, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	pin, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("reading the PIN: %w", err)
	}
	if len(pin) == 0 {
		return "", errors.New("empty PIN")
	}
	return string(pin), nil
}

// readPINFile reads a PIN file, without the line ending editors add.
func readPINFile(path, flag string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pin == "" {
		return "", fmt.Errorf("%s: %s is empty", flag, path)
	}
	return pin, nil
}

// readPINLine reads one line from r, the PIN piped to --pin-stdin.
func readPINLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the PIN from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty PIN on standard input")
	}
	return line, nil
}

// needsCgo fails a PKCS#11 command up front on a build without cgo,
// before any PIN is asked for.
func needsCgo(command string) error {
	if !hsm.Supported {
		return fmt.Errorf("%s: %w", command, hsm.ErrNeedsCgo)
	}
	return nil
}

func newHSMInitCommand() *cobra.Command {
	var o hsm.InitOptions
	var pins pinOptions
	var soPINFile string
	cmd := &cobra.Command{
		Use:   "init [flags]",
		Short: "Create a PKCS#11 token and an RSA key pair in it for pkcs11 recipients",
		Long: `Initialize a PKCS#11 token labelled --token-label with the user PIN, generate an
RSA key pair labelled --key-label in it (the private key cannot leave the
token), and write into --dir:

  KEY.yaml        pkcs11 key file (mode 0600): --key KEY.yaml to decrypt, or
                  --recipient pkcs11:KEY.yaml to encrypt through the token
  KEY.pub         the public key (PEM): --recipient pkcs11:KEY.pub
  TOKEN.pin       the user PIN (mode 0600), which KEY.yaml names by pin-source
  ocicrypt.conf   OCICRYPT_CONFIG file allowing the module
  softhsm2.conf   with SoftHSM and no $SOFTHSM2_CONF: SoftHSM's configuration,
                  keeping its tokens in tokens/ beside it

Without --module SoftHSM is used, found where distributions install it. If
the token exists, the key is added to it (with its user PIN); an existing
key or key file is never replaced without --force, which re-initializes the
token with the security officer PIN and so destroys every key in it. The
security officer PIN is the user PIN unless --so-pin-file is given.`,
		Example: `  imgcrypt hsm init                                  # SoftHSM, prompts for the PIN
  imgcrypt hsm init --pin-file pin.txt --dir /etc/imgcrypt/hsm
  printf '%s\n' "$PIN" | imgcrypt hsm init --pin-stdin --key-label team-a
  imgcrypt hsm init --module /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so --token-label prod --so-pin-file so.pin`,
		Args: usage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needsCgo("hsm init"); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usagef(cmd, "%v", err)
			}
			var err error
			if o.PIN, err = pins.read(cmd, fmt.Sprintf("User PIN for token %q: ", o.TokenLabel), true); err != nil {
				return err
			}
			if soPINFile != "" {
				if o.SOPIN, err = readPINFile(soPINFile, "--so-pin-file"); err != nil {
					return err
				}
			}
			res, err := hsm.Init(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("hsm init: %w", err)
			}
			printInitResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Module, "module", "", "PKCS#11 module (shared library) of the token (default: SoftHSM's)")
	f.StringVar(&o.TokenLabel, "token-label", hsm.DefaultTokenLabel, "label of the token to create or add the key to")
	f.StringVar(&o.KeyLabel, "key-label", hsm.DefaultKeyLabel, "label of the key pair, and name of its files")
	pins.register(cmd)
	f.StringVar(&soPINFile, "so-pin-file", "", "read the security officer PIN from this file (default: the user PIN)")
	f.IntVar(&o.Bits, "bits", hsm.DefaultBits, "RSA key size in bits")
	f.StringVar(&o.Dir, "dir", "", "directory for the files (default $XDG_CONFIG_HOME/imgcrypt/hsm)")
	f.BoolVarP(&o.Force, "force", "f", false, "re-initialize an existing token (destroying its keys) and overwrite files")
	return cmd
}

func printInitResult(w io.Writer, res *hsm.InitResult) {
	if res.TokenCreated {
		fmt.Fprintf(w, "created token %q (serial %s) with RSA-%d key %q\n", res.TokenLabel, res.Serial, res.Bits, res.KeyLabel)
	} else {
		fmt.Fprintf(w, "added RSA-%d key %q to token %q (serial %s)\n", res.Bits, res.KeyLabel, res.TokenLabel, res.Serial)
	}
	fmt.Fprintf(w, "  module:          %s\n", res.Module)
	fmt.Fprintf(w, "  key file:        %s\n", res.KeyFile)
	fmt.Fprintf(w, "  public key:      %s\n", res.PublicKey)
	fmt.Fprintf(w, "  PIN file:        %s\n", res.PINFile)
	fmt.Fprintf(w, "  ocicrypt config: %s\n", res.OcicryptConf)
	if res.SoftHSMConf != "" {
		fmt.Fprintf(w, "  SoftHSM config:  %s\n", res.SoftHSMConf)
	}
	fmt.Fprintf(w, `
Encrypt for the key (the public key needs no token), decrypt through the token:
  export OCICRYPT_CONFIG=%s
  imgcrypt encrypt -r pkcs11:%s IMAGE IMAGE:enc
  imgcrypt decrypt --key %s IMAGE:enc IMAGE:dec
For containerd, put %s in the decoder's key directory and
OCICRYPT_CONFIG=%s in its environment (see docs/hsm.md).
`, shellQuote(res.OcicryptConf), shellQuote(res.PublicKey), shellQuote(res.KeyFile),
		shellQuote(res.KeyFile), shellQuote(res.OcicryptConf))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("/._-+:,=@%", r)))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newHSMListCommand() *cobra.Command {
	var o hsm.ListOptions
	var pins pinOptions
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List PKCS#11 tokens and the keys in one of them",
		Long: `List the tokens of a PKCS#11 module (slot, label, manufacturer, model, serial)
and, after logging in with the user PIN, the objects in one token: its class,
label, ID, key type and size. Nothing secret is shown: no PIN, and no key
material. The token is --token-label, or the only initialized one.

With SoftHSM and no $SOFTHSM2_CONF, the SoftHSM configuration that
'hsm init' wrote in --dir is used.`,
		Example: `  imgcrypt hsm list
  imgcrypt hsm list --pin-file /etc/imgcrypt/hsm/imgcrypt.pin --dir /etc/imgcrypt/hsm
  imgcrypt hsm list --module /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so --token-label prod`,
		Args: usage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needsCgo("hsm list"); err != nil {
				return err
			}
			var err error
			if o.PIN, err = pins.read(cmd, "User PIN: ", false); err != nil {
				return err
			}
			l, err := hsm.List(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("hsm list: %w", err)
			}
			printListing(cmd.OutOrStdout(), l)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Module, "module", "", "PKCS#11 module (shared library) to ask (default: SoftHSM's)")
	f.StringVar(&o.TokenLabel, "token-label", "", "token whose objects to list (default: the only initialized one)")
	f.StringVar(&o.Dir, "dir", "", "directory of 'hsm init' (default $XDG_CONFIG_HOME/imgcrypt/hsm)")
	pins.register(cmd)
	return cmd
}

func printListing(w io.Writer, l *hsm.Listing) {
	fmt.Fprintf(w, "module: %s\n\n", l.Module)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tTOKEN\tMANUFACTURER\tMODEL\tSERIAL")
	for _, t := range l.Tokens {
		label := shown(t.Label)
		if !t.Initialized {
			label = "(not initialized)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.Slot, label, shown(t.Manufacturer), shown(t.Model), shown(t.Serial))
	}
	tw.Flush()
	if l.Token == nil {
		fmt.Fprintln(w, "\nno initialized token")
		return
	}
	fmt.Fprintf(w, "\nobjects in token %q:\n", l.Token.Label)
	if len(l.Objects) == 0 {
		fmt.Fprintln(w, "none")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tLABEL\tID\tTYPE\tBITS")
	for _, o := range l.Objects {
		bits := "-"
		if o.Bits > 0 {
			bits = strconv.Itoa(o.Bits)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Class, shown(o.Label), shown(fmt.Sprintf("%x", o.ID)), shown(o.KeyType), bits)
	}
	tw.Flush()
}

// shown prints a token's text field: "-" when empty, quoted when it holds
// anything unprintable.
func shown(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
