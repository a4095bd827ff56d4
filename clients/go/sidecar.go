package kodad

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// SidecarOptions configures SpawnSidecar.
type SidecarOptions struct {
	// Command is the kodad executable and leading arguments (default: $KODAD_BIN, else
	// "kodad" on PATH).
	Command []string
	// Listen is where kodad listens: "127.0.0.1:0" (the default, a free port) or
	// "unix:///path/kodad.sock".
	Listen string
	// Args are more `kodad serve` flags, e.g. "--data-dir", dir.
	Args []string
	// ReadyTimeout bounds the wait for the ready line (default 10 s).
	ReadyTimeout time.Duration
}

// ReadyLine is what `kodad serve --ready-json` prints once it serves.
type ReadyLine struct {
	Listen  string `json:"listen"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
	Token   string `json:"token"`
}

type sidecar struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	mu    sync.Mutex
	tail  []string
	Ready ReadyLine
}

func (s *sidecar) stderrTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tail) == 0 {
		return "(no output)"
	}
	return strings.Join(s.tail, "\n")
}

// stop closes kodad's stdin (it drains and exits) and kills it if it lingers.
func (s *sidecar) stop() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// SpawnSidecar starts `kodad serve` as a child process owned by the returned Client: with a
// per-launch token, exiting when the client is closed or this process dies.
func SpawnSidecar(ctx context.Context, o SidecarOptions) (*Client, error) {
	command := o.Command
	if len(command) == 0 {
		bin := os.Getenv("KODAD_BIN")
		if bin == "" {
			found, err := exec.LookPath("kodad")
			if err != nil {
				return nil, errors.New("kodad: cannot find the kodad binary: not on PATH and KODAD_BIN unset")
			}
			bin = found
		}
		command = []string{bin}
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	args := append(append([]string{}, command[1:]...), "serve", "--listen", listen, "--ready-json",
		"--launch-token", "--exit-with-parent")
	cmd := exec.Command(command[0], append(args, o.Args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kodad: cannot start %s: %w", command[0], err)
	}
	s := &sidecar{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	drained := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			s.mu.Lock()
			if s.tail = append(s.tail, lines.Text()); len(s.tail) > 20 {
				s.tail = s.tail[1:]
			}
			s.mu.Unlock()
		}
		close(drained)
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-drained
		_ = cmd.Wait()
		close(s.done)
	}()
	fail := func(format string, a ...any) (*Client, error) {
		s.stop()
		return nil, fmt.Errorf("kodad: "+format+": %s", append(a, s.stderrTail())...)
	}
	select {
	case line := <-lines:
		if line == "" {
			<-s.done
			return fail("exited with code %d before it was ready", cmd.ProcessState.ExitCode())
		}
		if err := json.Unmarshal([]byte(line), &s.Ready); err != nil {
			return fail("printed no ready line (%v)", err)
		}
	case <-time.After(timeout):
		return fail("was not ready within %v", timeout)
	case <-ctx.Done():
		return fail("%v", ctx.Err())
	}
	client, err := Dial(s.Ready.Address, WithToken(s.Ready.Token))
	if err != nil {
		s.stop()
		return nil, err
	}
	client.sidecar = s
	return client, nil
}

// Sidecar is the ready line of the kodad this client spawned (nil when it did not).
func (c *Client) Sidecar() *ReadyLine {
	if c.sidecar == nil {
		return nil
	}
	return &c.sidecar.Ready
}
