// Package cli is imgcrypt's command line: the cobra commands, their flags
// and help, the choice between the imgcrypt and ctd-decoder personalities,
// and the mapping of errors to exit codes. It is the only package that
// imports cobra; every command turns its flags into a plain options value
// and calls one domain package.
package cli
