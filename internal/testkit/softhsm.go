package testkit

import "github.com/imgcrypt/imgcrypt/internal/hsm"

// softHSMCondition answers [softhsm]: this build can load PKCS#11 modules
// (cgo) and SoftHSM's module is installed (Debian's softhsm2). Scripts get
// a private SoftHSM configuration from 'imgcrypt hsm init --dir', since
// testscript passes no $SOFTHSM2_CONF through.
func softHSMCondition() bool {
	if !hsm.Supported {
		return false
	}
	_, err := hsm.FindModule("")
	return err == nil
}
