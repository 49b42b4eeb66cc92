package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Set once by TestMain and read-only afterwards.
var (
	hubgateBin string // the freshly built cmd/hubgate
	nodeDir    string // absolute path of internal/e2e/node
	serveFlags struct {
		amqpAddr bool // `hubgate serve` has --amqp-addr (bind AMQP to the test address too)
	}
)

// TestMain builds the binary once and checks the tools the suite drives. A
// missing tool is a failure, never a skip: a suite that quietly skips is a
// suite that quietly stops testing.
func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code = m.Run()
	os.RemoveAll(filepath.Dir(hubgateBin))
	os.Exit(code)
}

func setup() (int, error) {
	_, file, _, _ := runtime.Caller(0)
	nodeDir = filepath.Join(filepath.Dir(file), "node")
	if err := checkNodeModules(nodeDir); err != nil {
		return 1, err
	}
	if _, err := exec.LookPath("node"); err != nil {
		return 1, fmt.Errorf("node not found in PATH (Node.js 18+ runs the Azure IoT SDKs): %v", err)
	}
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		return 1, fmt.Errorf("mosquitto_pub not found in PATH: install Debian's mosquitto-clients (apt-get install -y mosquitto-clients): %v", err)
	}

	dir, err := os.MkdirTemp("", "hubgate-e2e-bin-")
	if err != nil {
		return 1, err
	}
	hubgateBin = filepath.Join(dir, "hubgate")
	build := exec.Command("go", "build", "-o", hubgateBin, "./cmd/hubgate")
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return 1, fmt.Errorf("go build ./cmd/hubgate: %v\n%s", err, out)
	}

	// Bind every listener the binary has to the test's own address; AMQP
	// otherwise takes its default (all interfaces, 5671) and two hubs of
	// this suite would collide.
	help, _ := exec.Command(hubgateBin, "serve", "--help").CombinedOutput()
	serveFlags.amqpAddr = strings.Contains(string(help), "-amqp-addr")
	return 0, nil
}

var exactVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// checkNodeModules fails unless every dependency in node/package.json is
// installed: a stale node_modules after a package was added fails as clearly
// as a missing one.
func checkNodeModules(dir string) error {
	const hint = "run `make test` or `npm ci --prefix internal/e2e/node`"
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(dir, "package.json"), err)
	}
	for name, want := range pkg.Dependencies {
		raw, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
		if err != nil {
			return fmt.Errorf("Node dependency %s is not installed in %s/node_modules: %s", name, dir, hint)
		}
		var got struct {
			Version string `json:"version"`
		}
		exact := exactVersion.MatchString(want) // a range (^1.2.3) is npm's business
		if err := json.Unmarshal(raw, &got); err != nil || (exact && got.Version != want) {
			return fmt.Errorf("Node dependency %s is %q, package.json pins %q: %s", name, got.Version, want, hint)
		}
	}
	return nil
}
