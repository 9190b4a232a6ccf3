package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imgcrypt/imgcrypt/internal/layercrypt"
)

// Exit codes, documented in docs/exit-codes.md.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitNoKey       = 3
	ExitInterrupted = 130
)

// usageError is a mistake in how a command was called.
type usageError struct {
	command string
	err     error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var usage *usageError
	var status *exitStatusError
	switch {
	case errors.As(err, &status):
		return status.code
	case err == nil:
		return ExitOK
	case errors.As(err, &usage):
		return ExitUsage
	case errors.Is(err, layercrypt.ErrNoKey):
		return ExitNoKey
	default:
		return ExitFailure
	}
}

// usage wraps an argument validator so that its errors count as usage errors.
func usage(validate cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := validate(cmd, args); err != nil {
			return &usageError{command: cmd.CommandPath(), err: err}
		}
		return nil
	}
}

var noArgs = usage(func(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
})

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{command: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}
