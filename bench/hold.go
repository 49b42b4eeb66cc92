package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Cred is one virtual device's MQTT identity.
type Cred struct {
	ID       string
	Username string
	Password string
}

// HoldConfig configures the hold workload.
type HoldConfig struct {
	Addr        string      // MQTT/TLS address of the hub
	TLS         *tls.Config // client TLS (roots, server name)
	Devices     []Cred
	Concurrency int           // connects in flight; default 64
	SourceIPs   []string      // local addresses to spread connections over (ephemeral ports run out near 28k per pair)
	ServerPID   int           // read RSS of this process before and after
	Linger      time.Duration // keep the connections open this long after measuring
}

// HoldResult is what hold measured.
type HoldResult struct {
	Devices        int     `json:"devices"`
	Connected      int     `json:"connected"`
	Failed         int     `json:"failed"`
	FirstError     string  `json:"first_error,omitempty"`
	Seconds        float64 `json:"seconds"`
	RSSBeforeBytes uint64  `json:"server_rss_before_bytes"`
	RSSAfterBytes  uint64  `json:"server_rss_after_bytes"`
	BytesPerConn   float64 `json:"server_bytes_per_connection"`
}

// Hold connects every device, keeps the connections open until ctx ends or
// all are up, measures, then closes them.
func Hold(ctx context.Context, cfg HoldConfig) (HoldResult, error) {
	raiseFileLimit()
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	res := HoldResult{Devices: len(cfg.Devices)}
	var err error
	if cfg.ServerPID > 0 {
		if res.RSSBeforeBytes, err = RSS(cfg.ServerPID); err != nil {
			return res, err
		}
	}
	start := time.Now()
	conns := make([]net.Conn, len(cfg.Devices))
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for i, d := range cfg.Devices {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var local net.Addr
			if len(cfg.SourceIPs) > 0 {
				local = &net.TCPAddr{IP: net.ParseIP(cfg.SourceIPs[i%len(cfg.SourceIPs)])}
			}
			c, err := ConnectMQTT(ctx, cfg.Addr, local, cfg.TLS, d)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Failed = int(failed.Load())
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	for _, c := range conns {
		if c != nil {
			res.Connected++
		}
	}
	if cfg.ServerPID > 0 {
		// Let the server settle (write loops parked, buffers returned) before reading RSS.
		time.Sleep(2 * time.Second)
		if res.RSSAfterBytes, err = RSS(cfg.ServerPID); err != nil {
			return res, err
		}
		if res.Connected > 0 {
			res.BytesPerConn = float64(int64(res.RSSAfterBytes)-int64(res.RSSBeforeBytes)) / float64(res.Connected)
		}
	}
	if cfg.Linger > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d connected; holding for %v\n", res.Connected, cfg.Linger)
		select {
		case <-time.After(cfg.Linger):
		case <-ctx.Done():
		}
	}
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
	return res, nil
}

// ConnectMQTT opens a TLS connection, sends an MQTT 3.1.1 CONNECT
// (clean=false, keep-alive 1200 s) and
// waits for CONNACK 0.
func ConnectMQTT(ctx context.Context, addr string, local net.Addr, tc *tls.Config, d Cred) (net.Conn, error) {
	dialer := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: local, Timeout: 30 * time.Second}, Config: tc}
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: d.ID, Keepalive: 1200,
			UsernameFlag: true, Username: []byte(d.Username),
			PasswordFlag: d.Password != "", Password: []byte(d.Password),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		c.Close()
		return nil, err
	}
	ack := make([]byte, 4)
	if _, err := ioReadFull(c, ack); err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if ack[0]>>4 != packets.Connack || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("connack refused: code %d", ack[3])
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func ioReadFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// RSS returns the resident set size of process pid (Linux /proc).
func RSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("VmRSS not found")
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// virtual device is a socket.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
