package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/internal/hubclient"
	"github.com/hubgate/hubgate/registry"
)

// adminFlags are shared by every command that talks to a hub's REST API.
type adminFlags struct {
	connString string
	hubAddress string
	caFile     string
	dataDir    string
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.connString, "connection-string", "", "service connection string (env HUBGATE_CONNECTION_STRING)")
	fs.StringVar(&a.hubAddress, "hub-address", "", "HOST:PORT to dial (default: HostName:443)")
	fs.StringVar(&a.caFile, "ca-file", "", "extra CA certificate to trust (env HUBGATE_CA_FILE)")
	fs.StringVar(&a.dataDir, "data-dir", "./data", "where a local hub keeps its connection string and dev CA")
}

func (a *adminFlags) client() (*hubclient.Client, error) {
	cs := a.connString
	if cs == "" {
		p := filepath.Join(a.dataDir, "iothubowner.connection-string")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, errors.New("no --connection-string given (nor HUBGATE_CONNECTION_STRING, nor a local " + p + ")")
		}
		cs = strings.TrimSpace(string(b))
	}
	caFile := a.caFile
	if caFile == "" {
		if p := filepath.Join(a.dataDir, "dev-ca.pem"); fileExists(p) {
			caFile = p
		}
	}
	return hubclient.New(cs, hubclient.Options{Address: a.hubAddress, CAFile: caFile})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runDevice(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("device: missing subcommand (create, get, list, delete, enable, disable, connection-string)")
	}
	sub := args[0]
	var af adminFlags
	fs := flag.NewFlagSet("device "+sub, flag.ContinueOnError)
	af.register(fs)
	authType := fs.String("auth", "sas", "sas, selfsigned or ca")
	primaryTP := fs.String("primary-thumbprint", "", "primary X.509 thumbprint (selfsigned)")
	secondaryTP := fs.String("secondary-thumbprint", "", "secondary X.509 thumbprint (selfsigned)")
	disabled := fs.Bool("disabled", false, "create the device disabled")
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	needID := sub != "list"
	if needID && len(pos) != 1 {
		return fmt.Errorf("device %s: exactly one device id expected", sub)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		d := registry.Device{DeviceID: pos[0], Status: registry.StatusEnabled}
		if *disabled {
			d.Status = registry.StatusDisabled
		}
		switch strings.ToLower(*authType) {
		case "sas":
			d.Authentication.Type = registry.AuthSAS
		case "selfsigned":
			d.Authentication.Type = registry.AuthSelfSigned
			d.Authentication.X509Thumbprint = registry.X509Thumbprint{
				PrimaryThumbprint: strPtr(*primaryTP), SecondaryThumbprint: strPtr(*secondaryTP)}
		case "ca":
			d.Authentication.Type = registry.AuthCA
		default:
			return fmt.Errorf("device create: --auth must be sas, selfsigned or ca, not %q", *authType)
		}
		var out registry.Device
		if err := c.Do(ctx, http.MethodPut, hubclient.DevicePath(d.DeviceID), "", d, &out); err != nil {
			return err
		}
		return printJSON(out)
	case "get":
		var out registry.Device
		if err := c.Do(ctx, http.MethodGet, hubclient.DevicePath(pos[0]), "", nil, &out); err != nil {
			return err
		}
		return printJSON(out)
	case "list":
		var out []registry.Device
		if err := c.Do(ctx, http.MethodGet, "/devices", "", nil, &out); err != nil {
			return err
		}
		if out == nil {
			out = []registry.Device{}
		}
		return printJSON(out)
	case "delete":
		if err := c.Do(ctx, http.MethodDelete, hubclient.DevicePath(pos[0]), "*", nil, nil); err != nil {
			return err
		}
		return printJSON(map[string]string{"deleted": pos[0]})
	case "enable", "disable":
		var d registry.Device
		if err := c.Do(ctx, http.MethodGet, hubclient.DevicePath(pos[0]), "", nil, &d); err != nil {
			return err
		}
		d.Status = registry.StatusEnabled
		if sub == "disable" {
			d.Status = registry.StatusDisabled
		}
		var out registry.Device
		if err := c.Do(ctx, http.MethodPut, hubclient.DevicePath(d.DeviceID), d.Etag, d, &out); err != nil {
			return err
		}
		return printJSON(out)
	case "connection-string":
		var d registry.Device
		if err := c.Do(ctx, http.MethodGet, hubclient.DevicePath(pos[0]), "", nil, &d); err != nil {
			return err
		}
		cs := "HostName=" + c.Host + ";DeviceId=" + d.DeviceID
		if d.Authentication.Type == registry.AuthSAS {
			cs += ";SharedAccessKey=" + d.Authentication.SymmetricKey.PrimaryKey
		} else {
			cs += ";x509=true"
		}
		return printJSON(map[string]string{"connectionString": cs})
	}
	return fmt.Errorf("device: unknown subcommand %q", sub)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func runCA(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("ca: missing subcommand (add, list, get, delete, verification-code, verify)")
	}
	sub := args[0]
	var af adminFlags
	fs := flag.NewFlagSet("ca "+sub, flag.ContinueOnError)
	af.register(fs)
	verified := fs.Bool("verified", false, "mark the CA verified at upload (the operator vouches for possession)")
	certFile := fs.String("cert", "", "verification certificate (CN = verification code) for `ca verify`")
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	want := map[string]int{"add": 2, "list": 0, "get": 1, "delete": 1, "verification-code": 1, "verify": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("ca: unknown subcommand %q", sub)
	}
	if len(pos) != n {
		return fmt.Errorf("ca %s: %d argument(s) expected", sub, n)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	var out any
	switch sub {
	case "add":
		pem, err := os.ReadFile(pos[1])
		if err != nil {
			return err
		}
		err = c.Do(ctx, http.MethodPut, "/certificates/"+url.PathEscape(pos[0]), "",
			map[string]any{"certificate": string(pem), "isVerified": *verified}, &out)
		if err != nil {
			return err
		}
	case "list":
		if err := c.Do(ctx, http.MethodGet, "/certificates", "", nil, &out); err != nil {
			return err
		}
	case "get":
		if err := c.Do(ctx, http.MethodGet, "/certificates/"+url.PathEscape(pos[0]), "", nil, &out); err != nil {
			return err
		}
	case "delete":
		if err := c.Do(ctx, http.MethodDelete, "/certificates/"+url.PathEscape(pos[0]), "*", nil, nil); err != nil {
			return err
		}
		out = map[string]string{"deleted": pos[0]}
	case "verification-code":
		if err := c.Do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(pos[0])+"/generateVerificationCode", "*", nil, &out); err != nil {
			return err
		}
	case "verify":
		if *certFile == "" {
			return errors.New("ca verify: --cert FILE is required")
		}
		pem, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		err = c.Do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(pos[0])+"/verify", "*",
			map[string]string{"certificate": string(pem)}, &out)
		if err != nil {
			return err
		}
	}
	return printJSON(out)
}

func runToken(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	host := fs.String("hostname", "", "hub host name (as in the device's connection string)")
	device := fs.String("device", "", "device id")
	key := fs.String("key", "", "device key (base64)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime (negative: already expired, for tests)")
	if _, err := loadSources(fs, args); err != nil {
		return err
	}
	if *host == "" || *device == "" || *key == "" {
		return errors.New("token: --hostname, --device and --key are required")
	}
	fmt.Println(authn.Sign(authn.EncodeResource(*host+"/devices/"+*device), *key, time.Now().Add(*ttl), ""))
	return nil
}
