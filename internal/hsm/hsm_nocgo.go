//go:build !cgo

package hsm

import "context"

// Supported reports whether this build can load PKCS#11 modules: it cannot
// without cgo.
const Supported = false

// Init needs cgo: this build returns ErrNeedsCgo.
func Init(context.Context, InitOptions) (*InitResult, error) { return nil, ErrNeedsCgo }

// List needs cgo: this build returns ErrNeedsCgo.
func List(context.Context, ListOptions) (*Listing, error) { return nil, ErrNeedsCgo }
