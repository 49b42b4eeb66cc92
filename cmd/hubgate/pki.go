package main

import (
	"errors"
	"flag"

	"github.com/hubgate/hubgate/internal/pki"
)

// runPKI: `hubgate pki dev-certs --dir D --hostname H` writes the
// development CA and a server certificate once (what `serve` does on first
// start), so several nodes can share one certificate through a volume.
func runPKI(args []string) error {
	if len(args) == 0 || args[0] != "dev-certs" {
		return errors.New("pki: usage: hubgate pki dev-certs --dir DIR --hostname H[,H...]")
	}
	fs := flag.NewFlagSet("pki dev-certs", flag.ContinueOnError)
	dir := fs.String("dir", "./data", "directory for dev-ca.pem, server.pem and server.key")
	hosts := &listFlag{vals: []string{"localhost"}}
	fs.Var(hosts, "hostname", "host names for the server certificate (repeatable or comma-separated)")
	if _, err := loadSources(fs, args[1:]); err != nil {
		return err
	}
	dc, err := pki.EnsureDevCerts(*dir, hosts.vals)
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"caFile": dc.CAFile, "certFile": dc.CertFile, "keyFile": dc.KeyFile, "created": dc.Created})
}
