package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := Write(path, []byte("one"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if err := Write(path, []byte("two"), 0o600, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("overwrite without replace: %v, want fs.ErrExist", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "one" {
		t.Errorf("file changed to %q", data)
	}
	if err := Write(path, []byte("three"), 0o644, true); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "three" {
		t.Errorf("replace left %q", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
