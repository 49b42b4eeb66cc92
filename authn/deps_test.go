package authn

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps authn pure (DESIGN.md "Dependencies point inward", STYLE.md
// rule 2): no protocol head, no network client, no telemetry. crypto/x509
// imports package net (to parse IP SANs and name constraints), so "net"
// itself is allowed; it opens nothing.
func TestDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{
		"net/http",
		"github.com/mochi-mqtt/",
		"github.com/redis/",
		"github.com/Azure/go-amqp",
		"github.com/gorilla/websocket",
		"go.opentelemetry.io/",
		"github.com/hubgate/hubgate/broker",
		"github.com/hubgate/hubgate/provisioning",
		"github.com/hubgate/hubgate/cmd",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned only %q", deps)
	}
	for _, d := range deps {
		for _, b := range banned {
			if d == strings.TrimSuffix(b, "/") || strings.HasPrefix(d, b) || strings.HasPrefix(d, b+"/") {
				t.Errorf("authn depends on %s", d)
			}
		}
	}
}
