//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/miekg/pkcs11"
)

// Supported reports whether this build can load PKCS#11 modules.
const Supported = true

// Init initializes token o.TokenLabel (unless it exists), generates RSA
// key pair o.KeyLabel in it and writes the key yaml, public key, PIN file
// and ocicrypt config into o.Dir. With SoftHSM and no $SOFTHSM2_CONF it
// first writes a SoftHSM configuration keeping the tokens in o.Dir/tokens.
//
// Without o.Force it never destroys anything: an existing token gets the
// new key beside its others (after logging in with o.PIN), and an existing
// key or key file is an ErrExists error. With o.Force an existing token is
// re-initialized (with o.SOPIN), destroying every object in it.
func Init(ctx context.Context, o InitOptions) (*InitResult, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	module, err := FindModule(o.Module)
	if err != nil {
		return nil, err
	}
	p := pathsFor(o)
	if !o.Force {
		if f := existing(p.keyFile, p.publicKey); f != "" {
			return nil, fmt.Errorf("%s %w (give --force to overwrite it)", f, ErrExists)
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	var conf string
	if IsSoftHSM(module) {
		if conf, err = softHSMConf(o.Dir, true); err != nil {
			return nil, err
		}
	}
	m, err := load(module, conf)
	if err != nil {
		return nil, err
	}
	defer m.close()

	res := &InitResult{
		TokenLabel: o.TokenLabel, KeyLabel: o.KeyLabel, Bits: o.Bits,
		Module: module, SoftHSMConf: conf,
		KeyFile: p.keyFile, PublicKey: p.publicKey, PINFile: p.pinFile, OcicryptConf: p.ocicryptConf,
	}
	tokens, err := m.tokens()
	if err != nil {
		return nil, err
	}
	tok := findToken(tokens, o.TokenLabel)
	switch {
	case tok != nil && !o.Force:
		// Add the key to the token, unless it has one by that label.
		s, err := m.login(*tok, o.PIN)
		if err != nil {
			return nil, err
		}
		defer s.close()
		objs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_LABEL, o.KeyLabel))
		if err != nil {
			return nil, err
		}
		if len(objs) > 0 {
			return nil, fmt.Errorf("token %q: key %q %w (give --force to re-initialize the token, destroying every key in it)", o.TokenLabel, o.KeyLabel, ErrExists)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Serial = tok.Serial
		if err := s.generate(o, p, res); err != nil {
			return nil, err
		}
		return res, nil
	case tok == nil && !o.Force:
		if existing(p.pinFile) != "" {
			return nil, fmt.Errorf("%s %w, but token %q does not (give --force to overwrite it)", p.pinFile, ErrExists, o.TokenLabel)
		}
	}
	if tok == nil {
		if tok = freeSlot(tokens); tok == nil {
			return nil, fmt.Errorf("%w %q in %s, and no free slot to create it in (tokens: %s)", ErrNoToken, o.TokenLabel, module, labels(tokens))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	created, err := m.initToken(tok.Slot, o.TokenLabel, o.SOPIN, o.PIN)
	if err != nil {
		return nil, err
	}
	res.Serial, res.TokenCreated = created.Serial, true
	s, err := m.login(*created, o.PIN)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.generate(o, p, res); err != nil {
		return nil, err
	}
	return res, nil
}

// List lists the tokens of a module and the objects of one token: o.TokenLabel,
// or the only initialized token. It logs in to that token only.
func List(ctx context.Context, o ListOptions) (*Listing, error) {
	module, err := FindModule(o.Module)
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = DefaultDir(); err != nil {
			return nil, err
		}
	}
	conf, err := softHSMConf(dir, false)
	if err != nil {
		return nil, err
	}
	m, err := load(module, conf)
	if err != nil {
		return nil, err
	}
	defer m.close()
	l := &Listing{Module: module}
	if l.Tokens, err = m.tokens(); err != nil {
		return nil, err
	}
	var tok *Token
	if o.TokenLabel != "" {
		if tok = findToken(l.Tokens, o.TokenLabel); tok == nil {
			return nil, fmt.Errorf("%w %q in %s (tokens: %s)", ErrNoToken, o.TokenLabel, module, labels(l.Tokens))
		}
	} else {
		var inited []Token
		for _, t := range l.Tokens {
			if t.Initialized {
				inited = append(inited, t)
			}
		}
		switch len(inited) {
		case 0:
			return l, nil
		case 1:
			tok = &inited[0]
		default:
			return nil, fmt.Errorf("%s has %d tokens (%s): choose one with --token-label", module, len(inited), labels(l.Tokens))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := m.login(*tok, o.PIN)
	if err != nil {
		return nil, err
	}
	defer s.close()
	l.Token = tok
	if l.Objects, err = s.objects(); err != nil {
		return nil, err
	}
	return l, nil
}

// module is a loaded and initialized PKCS#11 module.
type module struct {
	path string
	ctx  *pkcs11.Ctx
}

// load loads and initializes the module at path; a non-empty softHSMConf
// is put in SoftHSM's environment variable while the module initializes,
// which is when SoftHSM reads it.
func load(path, softHSMConf string) (*module, error) {
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w %s: cannot load it as a PKCS#11 library", ErrNoModule, path)
	}
	if softHSMConf != "" {
		old, had := os.LookupEnv(SoftHSMConfEnv)
		os.Setenv(SoftHSMConfEnv, softHSMConf)
		defer func() {
			if had {
				os.Setenv(SoftHSMConfEnv, old)
			} else {
				os.Unsetenv(SoftHSMConfEnv)
			}
		}()
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		if softHSMConf != "" {
			return nil, fmt.Errorf("initializing %s with %s: %w", path, softHSMConf, p11Error(err))
		}
		return nil, fmt.Errorf("initializing %s: %w", path, p11Error(err))
	}
	return &module{path: path, ctx: ctx}, nil
}

func (m *module) close() {
	_ = m.ctx.Finalize()
	m.ctx.Destroy()
}

// tokens lists the slots that hold a token.
func (m *module) tokens() ([]Token, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("listing the slots of %s: %w", m.path, p11Error(err))
	}
	var ts []Token
	for _, slot := range slots {
		ti, err := m.ctx.GetTokenInfo(slot)
		if err != nil {
			return nil, fmt.Errorf("slot %d of %s: %w", slot, m.path, p11Error(err))
		}
		ts = append(ts, Token{
			Slot:         slot,
			Label:        trimField(ti.Label),
			Manufacturer: trimField(ti.ManufacturerID),
			Model:        trimField(ti.Model),
			Serial:       trimField(ti.SerialNumber),
			Initialized:  ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0,
		})
	}
	return ts, nil
}

// trimField trims a blank- or NUL-padded fixed-size PKCS#11 text field.
func trimField(s string) string { return strings.TrimRight(s, " \x00") }

func findToken(ts []Token, label string) *Token {
	for i := range ts {
		if ts[i].Initialized && ts[i].Label == label {
			return &ts[i]
		}
	}
	return nil
}

func freeSlot(ts []Token) *Token {
	for i := range ts {
		if !ts[i].Initialized {
			return &ts[i]
		}
	}
	return nil
}

// labels names tokens for messages.
func labels(ts []Token) string {
	var ls []string
	for _, t := range ts {
		if t.Initialized {
			ls = append(ls, fmt.Sprintf("%q", t.Label))
		}
	}
	if len(ls) == 0 {
		return "none initialized"
	}
	slices.Sort(ls)
	return strings.Join(ls, ", ")
}

// initToken initializes the token in slot with label and SO PIN, sets its
// user PIN, and returns the token as it is now (with a new serial number).
func (m *module) initToken(slot uint, label, soPIN, pin string) (*Token, error) {
	if err := m.ctx.InitToken(slot, soPIN, label); err != nil {
		if isPINError(err) {
			return nil, fmt.Errorf("initializing token %q: wrong security officer PIN for the token in slot %d", label, slot)
		}
		return nil, fmt.Errorf("initializing token %q in slot %d: %w", label, slot, p11Error(err))
	}
	ts, err := m.tokens()
	if err != nil {
		return nil, err
	}
	tok := findToken(ts, label)
	if tok == nil {
		return nil, fmt.Errorf("token %q: not found after initializing it", label)
	}
	sh, err := m.ctx.OpenSession(tok.Slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("token %q: opening a session: %w", label, p11Error(err))
	}
	defer m.ctx.CloseSession(sh)
	if err := m.ctx.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
		return nil, fmt.Errorf("token %q: security officer login: %w", label, p11Error(err))
	}
	defer m.ctx.Logout(sh)
	if err := m.ctx.InitPIN(sh, pin); err != nil {
		return nil, fmt.Errorf("token %q: setting the user PIN: %w", label, p11Error(err))
	}
	return tok, nil
}

// session is a read-write session logged in as the user.
type session struct {
	m     *module
	token Token
	sh    pkcs11.SessionHandle
}

// login opens a session on tok and logs in with the user PIN.
func (m *module) login(tok Token, pin string) (*session, error) {
	sh, err := m.ctx.OpenSession(tok.Slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("token %q: opening a session: %w", tok.Label, p11Error(err))
	}
	err = m.ctx.Login(sh, pkcs11.CKU_USER, pin)
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		m.ctx.CloseSession(sh)
		if isPINError(err) {
			return nil, fmt.Errorf("token %q: %w", tok.Label, ErrWrongPIN)
		}
		return nil, fmt.Errorf("token %q: logging in: %w", tok.Label, p11Error(err))
	}
	return &session{m: m, token: tok, sh: sh}, nil
}

func (s *session) close() {
	_ = s.m.ctx.Logout(s.sh)
	_ = s.m.ctx.CloseSession(s.sh)
}

// find returns the objects matching template.
func (s *session) find(template ...*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	ctx := s.m.ctx
	if err := ctx.FindObjectsInit(s.sh, template); err != nil {
		return nil, fmt.Errorf("token %q: searching objects: %w", s.token.Label, p11Error(err))
	}
	var all []pkcs11.ObjectHandle
	for {
		objs, _, err := ctx.FindObjects(s.sh, 100)
		if err != nil {
			_ = ctx.FindObjectsFinal(s.sh)
			return nil, fmt.Errorf("token %q: searching objects: %w", s.token.Label, p11Error(err))
		}
		if len(objs) == 0 {
			break
		}
		all = append(all, objs...)
	}
	if err := ctx.FindObjectsFinal(s.sh); err != nil {
		return nil, fmt.Errorf("token %q: searching objects: %w", s.token.Label, p11Error(err))
	}
	return all, nil
}

// generate makes the RSA key pair for o in the token and writes the files.
func (s *session) generate(o InitOptions, p paths, res *InitResult) error {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	label := o.KeyLabel
	// What ocicrypt needs: OAEP encryption (wrapping) with the public key
	// and decryption (unwrapping) with the private key, which never leaves
	// the token.
	public := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, o.Bits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
	}
	private := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
	pubH, _, err := s.m.ctx.GenerateKeyPair(s.sh, mech, public, private)
	if err != nil {
		return fmt.Errorf("token %q: generating RSA-%d key %q: %w", s.token.Label, o.Bits, label, p11Error(err))
	}
	pub, err := s.rsaPublicKey(pubH)
	if err != nil {
		return err
	}
	res.KeyID = id
	return writeInitFiles(o, p, res, pub, id)
}

// writeInitFiles writes the PIN file, the public key, the key yaml and
// the ocicrypt config (adding the module to an existing one).
func writeInitFiles(o InitOptions, p paths, res *InitResult, pub *rsa.PublicKey, id []byte) error {
	pubPEM, err := publicKeyPEM(pub)
	if err != nil {
		return err
	}
	var env map[string]string
	if res.SoftHSMConf != "" {
		env = map[string]string{SoftHSMConfEnv: res.SoftHSMConf}
	}
	comment := fmt.Sprintf("# RSA-%d key %q in PKCS#11 token %q, written by imgcrypt hsm init.\n"+
		"# Use it with --key FILE or --recipient pkcs11:FILE, with OCICRYPT_CONFIG=%s.\n",
		o.Bits, o.KeyLabel, o.TokenLabel, p.ocicryptConf)
	keyYAML, err := keyFileYAML(keyURI(res.Module, o.TokenLabel, o.KeyLabel, id, p.pinFile), env, comment)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(p.ocicryptConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", p.ocicryptConf, err)
	}
	if errors.Is(err, os.ErrNotExist) || o.Force {
		old = nil
	}
	conf, changed, err := ocicryptConfig(old, res.Module)
	if err != nil {
		return fmt.Errorf("%s: %w", p.ocicryptConf, err)
	}
	// ocicrypt reads the PIN file as it is: no trailing newline.
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{p.pinFile, []byte(o.PIN), 0o600},
		{p.publicKey, pubPEM, 0o644},
		{p.keyFile, keyYAML, 0o600},
	}
	if changed {
		files = append(files, struct {
			path string
			data []byte
			perm os.FileMode
		}{p.ocicryptConf, conf, 0o644})
	}
	for _, f := range files {
		if err := writeFile(f.path, f.data, f.perm); err != nil {
			return fmt.Errorf("writing %s (the key is in the token; run again with --force after fixing this): %w", f.path, err)
		}
	}
	return nil
}

// rsaPublicKey reads the public half of an RSA key from the token.
func (s *session) rsaPublicKey(h pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attrs, err := s.m.ctx.GetAttributeValue(s.sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("token %q: reading the public key: %w", s.token.Label, p11Error(err))
	}
	n := new(big.Int).SetBytes(attrs[0].Value)
	e := new(big.Int).SetBytes(attrs[1].Value)
	if n.Sign() == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("token %q: the token returned an invalid RSA public key", s.token.Label)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// objects describes every object the session sees, reading only
// attributes that are never secret.
func (s *session) objects() ([]Object, error) {
	hs, err := s.find()
	if err != nil {
		return nil, err
	}
	objs := make([]Object, 0, len(hs))
	for _, h := range hs {
		objs = append(objs, s.describe(h))
	}
	slices.SortStableFunc(objs, func(a, b Object) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		return strings.Compare(a.Class, b.Class)
	})
	return objs, nil
}

// attr reads one attribute, nil when the object has none or hides it;
// asking one at a time keeps one inapplicable attribute from failing all.
func (s *session) attr(h pkcs11.ObjectHandle, typ uint) []byte {
	attrs, err := s.m.ctx.GetAttributeValue(s.sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
	if err != nil || len(attrs) != 1 {
		return nil
	}
	return attrs[0].Value
}

func (s *session) describe(h pkcs11.ObjectHandle) Object {
	o := Object{Label: string(s.attr(h, pkcs11.CKA_LABEL)), ID: s.attr(h, pkcs11.CKA_ID)}
	class, ok := ulong(s.attr(h, pkcs11.CKA_CLASS))
	o.Class = className(class, ok)
	switch class {
	case pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_SECRET_KEY:
	default:
		return o
	}
	kt, ok := ulong(s.attr(h, pkcs11.CKA_KEY_TYPE))
	if !ok {
		return o
	}
	switch kt {
	case pkcs11.CKK_RSA:
		o.KeyType = "RSA"
		if bits, ok := ulong(s.attr(h, pkcs11.CKA_MODULUS_BITS)); ok {
			o.Bits = int(bits)
		} else if n := s.attr(h, pkcs11.CKA_MODULUS); len(n) > 0 {
			o.Bits = new(big.Int).SetBytes(n).BitLen()
		}
	case pkcs11.CKK_EC:
		o.KeyType = "EC"
		o.Bits = curveBits(s.attr(h, pkcs11.CKA_EC_PARAMS))
	case pkcs11.CKK_AES:
		o.KeyType = "AES"
		if n, ok := ulong(s.attr(h, pkcs11.CKA_VALUE_LEN)); ok {
			o.Bits = int(n) * 8
		}
	default:
		o.KeyType = keyTypeName(kt)
	}
	return o
}

// ulong decodes a CK_ULONG attribute value, in the platform's byte order.
func ulong(b []byte) (uint, bool) {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), true
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), true
	}
	return 0, false
}

func className(class uint, ok bool) string {
	if !ok {
		return "?"
	}
	switch class {
	case pkcs11.CKO_PRIVATE_KEY:
		return "private"
	case pkcs11.CKO_PUBLIC_KEY:
		return "public"
	case pkcs11.CKO_SECRET_KEY:
		return "secret"
	case pkcs11.CKO_CERTIFICATE:
		return "certificate"
	case pkcs11.CKO_DATA:
		return "data"
	}
	return fmt.Sprintf("0x%x", class)
}

func keyTypeName(kt uint) string {
	switch kt {
	case pkcs11.CKK_DES3:
		return "DES3"
	case pkcs11.CKK_GENERIC_SECRET:
		return "generic"
	case 0x40: // CKK_EC_EDWARDS, PKCS#11 3.0
		return "EdDSA"
	case 0x41: // CKK_EC_MONTGOMERY, PKCS#11 3.0
		return "XDH"
	}
	return fmt.Sprintf("0x%x", kt)
}

// curveBits gives the size of a named curve from DER CKA_EC_PARAMS.
func curveBits(params []byte) int {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return 0
	}
	switch oid.String() {
	case "1.2.840.10045.3.1.7":
		return 256
	case "1.3.132.0.34":
		return 384
	case "1.3.132.0.35":
		return 521
	}
	return 0
}

// isPINError reports whether err is the token refusing a PIN.
func isPINError(err error) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && (e == pkcs11.CKR_PIN_INCORRECT || e == pkcs11.CKR_PIN_INVALID || e == pkcs11.CKR_PIN_LEN_RANGE)
}

// p11Error turns the return values users meet into words; the rest keep
// their CKR_ name.
func p11Error(err error) error {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e {
	case pkcs11.CKR_PIN_LOCKED:
		return errors.New("the PIN is locked (too many wrong tries)")
	case pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return errors.New("the token has no user PIN")
	case pkcs11.CKR_TOKEN_NOT_PRESENT:
		return errors.New("no token in the slot")
	case pkcs11.CKR_PIN_LEN_RANGE:
		return errors.New("the token does not accept a PIN of that length")
	case pkcs11.CKR_TOKEN_WRITE_PROTECTED:
		return errors.New("the token is write-protected")
	case pkcs11.CKR_DEVICE_MEMORY:
		return errors.New("the token is full")
	case pkcs11.CKR_GENERAL_ERROR:
		return errors.New("the module reported a general error (for SoftHSM: can this user read its configuration and write its token directory?)")
	}
	return err
}

// paths are the files Init writes for a token and key.
type paths struct {
	keyFile, publicKey, pinFile, ocicryptConf, softHSMConf, tokenDir string
}

func pathsFor(o InitOptions) paths {
	return paths{
		keyFile:      filepath.Join(o.Dir, o.KeyLabel+".yaml"),
		publicKey:    filepath.Join(o.Dir, o.KeyLabel+".pub"),
		pinFile:      filepath.Join(o.Dir, o.TokenLabel+".pin"),
		ocicryptConf: filepath.Join(o.Dir, "ocicrypt.conf"),
		softHSMConf:  filepath.Join(o.Dir, "softhsm2.conf"),
		tokenDir:     filepath.Join(o.Dir, "tokens"),
	}
}

// existing returns the first of files that exists.
func existing(files ...string) string {
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			return f
		}
	}
	return ""
}

// publicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
func publicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
