package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRestart: the first start of `hubgate serve` lays out its data
// directory as documented, and devices and a verified CA survive a SIGTERM
// and a restart on the same directory (and a deleted device stays deleted).
func TestRestart(t *testing.T) {
	t.Parallel()
	h := startHub(t, "hub-restart", ipRestart)
	checkFirstStart(t, h)
	caPEM := readFile(t, h.CAFile)

	sasCS := h.sasConnString(t, "restart-sas")
	ca, caFile := rootCA(t, "e2e restart CA")
	h.addVerifiedCA(t, "e2e-restart", ca, caFile)
	h.createDevice(t, "restart-ca", "--auth", "ca")
	caCert := issue(t, ca, "restart-ca")
	goneCS := h.sasConnString(t, "restart-deleted")
	h.cli(t, nil, "device", "delete", "restart-deleted")

	if err := h.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	h.start(t)

	if got := readFile(t, h.CAFile); !bytes.Equal(got, caPEM) {
		t.Fatal("dev-ca.pem changed across a restart: clients that trust it would stop connecting")
	}
	if got := strings.TrimSpace(string(readFile(t, filepath.Join(h.DataDir, "iothubowner.connection-string")))); got != h.ConnStr {
		t.Fatalf("the service connection string changed across a restart:\nbefore %s\nafter  %s", h.ConnStr, got)
	}
	var list []device
	h.cli(t, &list, "device", "list")
	ids := map[string]bool{}
	for _, d := range list {
		ids[d.DeviceID] = true
	}
	if !ids["restart-sas"] || !ids["restart-ca"] || ids["restart-deleted"] {
		t.Fatalf("after restart, device list = %v; want restart-sas and restart-ca, not restart-deleted", ids)
	}

	t.Run("ok/sas-device", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "mqtt", sasCS), 1)
	})
	t.Run("fail/deleted-device-stays-deleted", func(t *testing.T) {
		t.Parallel()
		wantRefused(t, h.connect(t, "mqtt", goneCS))
	})
	t.Run("ok/ca-device", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "mqtt", h.x509ConnString("restart-ca"), caCert.flags()...), 1)
	})
}

// checkFirstStart checks the files the first start generates (the binary's
// contract): the dev CA, an ECDSA P-256 server certificate for the host
// name, 127.0.0.1 and ::1 signed by it, and the owner connection string,
// readable by its owner only.
func checkFirstStart(t *testing.T, h *hub) {
	t.Helper()
	csFile := filepath.Join(h.DataDir, "iothubowner.connection-string")
	st, err := os.Stat(csFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600 (it holds the owner key)", csFile, st.Mode().Perm())
	}
	if want := "HostName=" + h.Name + ";SharedAccessKeyName=iothubowner;SharedAccessKey="; !strings.HasPrefix(h.ConnStr, want) || len(h.ConnStr) == len(want) {
		t.Errorf("service connection string %q, want %q followed by a key", h.ConnStr, want)
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(readFile(t, h.CAFile)) {
		t.Fatalf("%s holds no certificate", h.CAFile)
	}
	block, _ := pem.Decode(readFile(t, filepath.Join(h.DataDir, "server.pem")))
	if block == nil {
		t.Fatal("server.pem holds no PEM block")
	}
	srv, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := srv.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("server certificate key is %T, want ECDSA P-256", srv.PublicKey)
	}
	if !slices.Contains(srv.DNSNames, h.Name) {
		t.Errorf("server certificate DNS names %v lack %s", srv.DNSNames, h.Name)
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if !slices.ContainsFunc(srv.IPAddresses, func(a net.IP) bool { return a.Equal(net.ParseIP(ip)) }) {
			t.Errorf("server certificate IPs %v lack %s", srv.IPAddresses, ip)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{DNSName: h.Name, Roots: roots}); err != nil {
		t.Errorf("server certificate does not verify for %s against dev-ca.pem: %v", h.Name, err)
	}
	if _, err := os.Stat(filepath.Join(h.DataDir, "server.key")); err != nil {
		t.Error(err)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
