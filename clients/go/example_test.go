package kodad_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The README's example, compiled and run against a live service.
func TestQuickstartExample(t *testing.T) {
	address := startKodad(t)
	out, err := exec.Command("go", "run", "./examples/quickstart", address, t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "You said: hello from Go" {
		t.Fatalf("output %q", got)
	}
}
