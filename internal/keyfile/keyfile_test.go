package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode after replace %v, %v; want 0644", fi.Mode(), err)
	}
	err := Write(filepath.Join(t.TempDir(), "nodir", "key"), []byte("x"), 0o600, false)
	if err == nil || !strings.HasPrefix(err.Error(), "writing ") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("error %v should name the key file, not a temporary one", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
