package httpapi_test

import (
	"crypto/x509"

	"github.com/hubgate/hubgate/registry"
)

func x509VerifyOpts(r *registry.Registry) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: r.VerifiedCAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}
