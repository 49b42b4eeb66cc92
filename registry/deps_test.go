package registry_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps package registry free of network code (DESIGN.md
// "Dependencies point inward").
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{"net/http", "github.com/redis/", "github.com/mochi-mqtt/", "github.com/gorilla/websocket"}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b) || strings.HasPrefix(dep, b+"/") {
				t.Errorf("registry depends on %s", dep)
			}
		}
	}
}
