// Package redistest starts a real redis-server for tests: on a free port of
// 127.0.0.1 (or another loopback address), in a t.TempDir, stopped in
// t.Cleanup. A Server can be killed with SIGKILL (outage tests) and
// restarted on the same address, so clients that hold the address see the
// same Redis come back.
//
// It imports only the standard library and speaks just enough RESP to send
// PING. A missing redis-server fails the test: the Redis tests are part of
// the suite, not optional extras (Debian: apt-get install redis-server).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configure Start. The zero value is a persistence-less server on
// a free port of 127.0.0.1.
type Options struct {
	// Host is the loopback address to bind, default 127.0.0.1 (Linux routes
	// all of 127.0.0.0/8 to lo, so 127.0.0.2 etc. work without setup).
	Host string
	// Persistence turns on the append-only file with fsync on every write,
	// so a SIGKILL loses nothing the server acknowledged and Restart brings
	// the data back. Off by default: a Kill+Restart then gives an empty Redis.
	Persistence bool
	// Args are extra redis-server arguments, e.g. "--requirepass", "secret".
	Args []string
}

// startTimeout bounds how long a start or restart may take to answer PING.
// Generous: CI machines under -race can be slow to fork and exec.
const startTimeout = 15 * time.Second

// Server is a running (or killed) redis-server owned by one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	host string
	opts Options

	mu   sync.Mutex // guards port, cmd, done, log
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	log  string        // path of the current process's log file
}

// Start starts a redis-server and waits until it answers PING; it is killed
// when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found in PATH (%v); the Redis tests need a real server: apt-get install redis-server", err)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), host: opts.Host, opts: opts}
	t.Cleanup(s.Kill)

	// A free port is found by binding :0 and releasing it; another process
	// could take it before redis-server binds, so a failed start on a fresh
	// port is retried a few times.
	var lastErr error
	for range 5 {
		port, err := freePort(opts.Host)
		if err != nil {
			t.Fatalf("redistest: find a free port on %s: %v", opts.Host, err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's host:port; it does not change across Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// URL is redis://Addr().
func (s *Server) URL() string { return "redis://" + s.Addr() }

// start runs redis-server on s.port and waits for PING; on failure the
// process is gone and the error carries the tail of its log.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on port %d is already running", s.port)
	}
	args := []string{
		"--bind", s.host,
		"--port", strconv.Itoa(s.port),
		"--dir", s.dir,
		"--protected-mode", "no",
		"--daemonize", "no",
		"--save", "", // no RDB snapshots
	}
	if s.opts.Persistence {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	s.log = filepath.Join(s.dir, fmt.Sprintf("redis-%d-%d.log", s.port, time.Now().UnixNano()))
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
	deadline := time.Now().Add(startTimeout)
	for {
		perr := ping(addr, time.Second)
		if perr == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redis-server on %s exited during start-up: %s", addr, tail(s.log))
		case <-time.After(10 * time.Millisecond): // poll interval, bounded by deadline
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server on %s did not answer PING within %v (last error: %v): %s", addr, startTimeout, perr, tail(s.log))
		}
	}
}

// ping sends a RESP PING and expects +PONG.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "log:\n" + string(b)
}

// Kill stops the server with SIGKILL (no shutdown save, connections reset)
// and waits until the process is gone. Killing a stopped server is a no-op.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("redistest: kill redis-server: %v", err)
	}
	<-s.done
	s.cmd, s.done = nil, nil
}

// Pause freezes the server with SIGSTOP: its connections stay open but
// nothing is answered, like a hung server or a silent network partition
// (where a client must rely on its own timeouts). Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %v to a server that is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Restart starts the server again on the same address (killing it first if
// it still runs) and waits until it answers PING. With Persistence the data
// acknowledged before the kill is back; without, Redis starts empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	// The listening socket of the killed process is gone once it has been
	// reaped; redis-server sets SO_REUSEADDR, so TIME_WAIT connections do
	// not block the bind. A bind failure is still retried until the deadline.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: restart on %s: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond) // retry interval, not synchronisation
	}
}

// Running reports whether the server process is up (it may still be
// starting inside Start or Restart).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
