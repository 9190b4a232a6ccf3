//go:build !cgo

package hsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/imgcrypt/imgcrypt/internal/hsm"
	"github.com/imgcrypt/imgcrypt/internal/keys"
)

// TestNoCgo checks that a build without cgo says what it lacks instead of
// failing later and vaguely, in hsm and for pkcs11 keys.
func TestNoCgo(t *testing.T) {
	if hsm.Supported {
		t.Fatal("Supported without cgo")
	}
	if _, err := hsm.Init(context.Background(), hsm.InitOptions{PIN: "1"}); !errors.Is(err, hsm.ErrNeedsCgo) {
		t.Errorf("Init: %v", err)
	}
	if _, err := hsm.List(context.Background(), hsm.ListOptions{}); !errors.Is(err, hsm.ErrNeedsCgo) {
		t.Errorf("List: %v", err)
	}
	if _, err := keys.EncryptConfig([]string{"pkcs11:testdata/rsa.pub"}, nil, nil, keys.Options{}); !errors.Is(err, hsm.ErrNeedsCgo) {
		t.Errorf("pkcs11 recipient: %v", err)
	}
	if _, err := keys.DecryptConfig([]string{"testdata/key.yaml"}, nil, keys.Options{}); !errors.Is(err, hsm.ErrNeedsCgo) {
		t.Errorf("pkcs11 key: %v", err)
	}
}
