package attest

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFileDurable writes data to path so that after a crash or power cut
// the file holds either its old or its new content, never a mix: write a
// temporary file in the same directory, fsync it, move it into place, fsync
// the directory (the rename is only durable once the directory is). With
// replace false an existing path is left alone and an fs.ErrExist error
// returned.
func writeFileDurable(path string, data []byte, perm os.FileMode, replace bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("attest: write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("attest: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("attest: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("attest: fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("attest: write %s: %w", path, err)
	}
	if replace {
		err = os.Rename(tmpName, path)
	} else {
		err = os.Link(tmpName, path) // fails with EEXIST instead of replacing
	}
	if err != nil {
		return fmt.Errorf("attest: write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("attest: fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("attest: fsync dir %s: %w", dir, err)
	}
	return nil
}
