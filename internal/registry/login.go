package registry

import (
	"context"
	"fmt"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// Login checks username and password against host and stores them in the
// docker configuration (or its credential helper) for later commands.
func Login(ctx context.Context, host, username, password string, opts Options) error {
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %w", host, err)
	}
	client, err := opts.HTTPClient()
	if err != nil {
		return err
	}
	reg.PlainHTTP = opts.PlainHTTP
	reg.Client = &auth.Client{Client: client, Cache: auth.NewCache()}
	store, err := CredentialStore()
	if err != nil {
		return err
	}
	if err := credentials.Login(ctx, store, reg, auth.Credential{Username: username, Password: password}); err != nil {
		return fmt.Errorf("logging in to %s: %w", host, err)
	}
	return nil
}

// Logout forgets the stored credentials for host.
func Logout(ctx context.Context, host string) error {
	store, err := CredentialStore()
	if err != nil {
		return err
	}
	return credentials.Logout(ctx, store, host)
}
