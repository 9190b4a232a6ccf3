package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/imgcrypt/imgcrypt/internal/cli"
	"github.com/imgcrypt/imgcrypt/internal/testkit"
)

// TestMain registers the binary under both of its names, so scripts run it
// as imgcrypt and through the ctd-decoder name, exactly as containerd does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"imgcrypt":         func() { os.Exit(cli.Main(os.Args)) },
		cli.DecoderName:    func() { os.Exit(cli.Main(os.Args)) },
		"test-keyprovider": func() { os.Exit(testkit.KeyProviderMain()) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup:               testkit.Setup,
		Cmds:                testkit.Commands(),
		Condition:           testkit.Condition,
	})
}
