//go:build !unix

package registry

import "os"

// lockFile is a no-op where flock is unavailable: one process per data
// directory is then the operator's responsibility.
func lockFile(*os.File) error { return nil }
