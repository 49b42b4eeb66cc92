package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t, Options{})
	addr := s.Addr()
	if err := ping(addr, time.Second); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	s.Kill()
	if s.Running() {
		t.Fatal("Running after Kill")
	}
	if err := ping(addr, time.Second); err == nil {
		t.Fatal("killed server still answers PING")
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr())
	}
	if err := ping(addr, time.Second); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}

func TestOtherLoopbackHost(t *testing.T) {
	s := Start(t, Options{Host: "127.0.0.2"})
	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.2" {
		t.Fatalf("Addr() = %s, want host 127.0.0.2", s.Addr())
	}
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.2:") {
		t.Fatalf("URL() = %s", s.URL())
	}
	if err := ping(s.Addr(), time.Second); err != nil {
		t.Fatal(err)
	}
}

// command sends one RESP command and returns the first reply line.
func command(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
		line, err = r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimSpace(line)
}

func TestPersistence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
		want    string
	}{
		{"ok/persistence-keeps-data", true, "v"},
		{"ok/no-persistence-starts-empty", false, "$-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, Options{Persistence: tc.persist})
			if got := command(t, s.Addr(), "SET", "k", "v"); got != "+OK" {
				t.Fatalf("SET: %s", got)
			}
			s.Kill()
			s.Restart()
			if got := command(t, s.Addr(), "GET", "k"); got != tc.want {
				t.Fatalf("GET after kill+restart = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPauseResume(t *testing.T) {
	s := Start(t, Options{})
	s.Pause()
	err := ping(s.Addr(), 200*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING to a paused server: %v, want a timeout", err)
	}
	s.Resume()
	if err := ping(s.Addr(), 5*time.Second); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}
