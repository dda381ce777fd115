//go:build !(linux && (amd64 || arm64))

package main

import "errors"

// exchange would swap two directory entries atomically; this system
// offers no way, so the caller falls back on renaming file by file.
func exchange(a, b string) error { return errors.ErrUnsupported }
