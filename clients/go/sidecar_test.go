package kodad_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kodad/kodad/clients/go"
	kodav1 "github.com/kodad/kodad/clients/go/gen/koda/v1"
	"google.golang.org/grpc/codes"
)

func kodadCommand() []string {
	python := os.Getenv("KODAD_PYTHON")
	if python == "" {
		python = "../../.venv/bin/python"
	}
	return []string{python, "-m", "kodad"}
}

func TestSpawnSidecar(t *testing.T) {
	for name, listen := range map[string]string{
		"port": "127.0.0.1:0",
		"unix": "unix://" + filepath.Join(t.TempDir(), "kodad.sock"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			client, err := kodad.SpawnSidecar(ctx, kodad.SidecarOptions{
				Command: kodadCommand(), Listen: listen, Args: []string{"--data-dir", t.TempDir()},
			})
			if err != nil {
				t.Fatal(err)
			}
			ready := client.Sidecar()
			if ready.Token == "" || ready.PID == 0 {
				t.Fatalf("ready line %+v", ready)
			}
			session, err := client.CreateSession(ctx, &kodav1.Session{Workspace: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			models, err := client.ListModels(ctx, nil, session.Id)
			if err != nil || len(models) != 1 || models[0].Id != "scripted" {
				t.Fatalf("models %v, %v", models, err)
			}
			var text strings.Builder
			for event, err := range client.RunTurn(ctx, session.Id, "hi", kodad.Handlers{}) {
				if err != nil {
					t.Fatal(err)
				}
				text.WriteString(event.GetTextDelta().GetText())
			}
			if text.String() != "You said: hi" {
				t.Fatalf("text %q", text.String())
			}
			// Without the launch token the sidecar refuses.
			stranger, err := kodad.Dial(ready.Address)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stranger.ServerInfo(ctx); kodad.Code(err) != codes.Unauthenticated {
				t.Fatalf("no token: %v", err)
			}
			_ = stranger.Close()
			_ = client.Close()
			// Closing the client stopped the child.
			if process, err := os.FindProcess(ready.PID); err == nil {
				if err := process.Signal(syscall.Signal(0)); err == nil {
					t.Fatalf("kodad %d still runs after Close", ready.PID)
				}
			}
		})
	}
}

func TestSpawnSidecarErrors(t *testing.T) {
	ctx := context.Background()
	_, err := kodad.SpawnSidecar(ctx, kodad.SidecarOptions{Command: []string{filepath.Join(t.TempDir(), "missing")}})
	if err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Fatalf("missing binary: %v", err)
	}
	_, err = kodad.SpawnSidecar(ctx, kodad.SidecarOptions{Command: kodadCommand(), Args: []string{"--tls-cert", "x.pem"}})
	if err == nil || !strings.Contains(err.Error(), "exited with code 2") || !strings.Contains(err.Error(), "--tls-cert and --tls-key") {
		t.Fatalf("failing binary: %v", err)
	}
}
