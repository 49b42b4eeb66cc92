package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"crypto/tls"

	"github.com/hubgate/hubgate/broker"
	"github.com/hubgate/hubgate/internal/hubclient"
	"github.com/hubgate/hubgate/provisioning"
	"github.com/hubgate/hubgate/provisioning/amqphead"
	dpsredis "github.com/hubgate/hubgate/provisioning/redisstore"
)

const dpsUsage = `usage: hubgate dps <command> [flags]

commands:
  serve [--id-scope S] [--redis-url U] [--hostname H] [--mqtt-addr A] [--amqp-addr A] [--https-addr A] [--metrics-addr A] [--data-dir D]
  hub link NAME --hub-connection-string CS [--allocation-weight N] [--hub-address HOST:PORT] [--hub-ca-file F]
  hub list | hub unlink NAME
  enrollment create ID [--attestation symmetricKey|x509] [--primary-key K --secondary-key K | --cert F [--secondary-cert F]]
                       [--device-id D] [--iot-hubs H,H] [--allocation hashed|static|custom] [--webhook-url U]
                       [--reprovision migrate|reset|never] [--disabled] [--edge]
  enrollment update ID [the same flags; only those given change]
  enrollment move ID --hub NAME        restrict the enrollment to one hub; its device moves now
  enrollment get|delete ID | enrollment list
  enrollment revoke ID [--cascade | --cascade-disable]
  group create|update|get|delete|list|revoke ...   (as enrollment; --cert is the signing CA,
                       or --ca-ref NAME [--secondary-ca-ref NAME] names CAs registered with dps ca)
  ca add NAME FILE [--verified] | ca list | ca get|delete NAME
  ca verification-code NAME | ca verify NAME --cert FILE   proof of possession
  registration get|delete ID

Admin commands take --connection-string (HUBGATE_DPS_CONNECTION_STRING; default:
<data-dir>/provisioningserviceowner.connection-string), --dps-address HOST:PORT
(default: HostName:443) and --ca-file (HUBGATE_DPS_CA_FILE; default:
<data-dir>/dev-ca.pem when present). --data-dir defaults to ./data-dps.
`

func runDPS(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, dpsUsage)
		return errors.New("dps: missing command")
	}
	switch args[0] {
	case "serve":
		return runDPSServe(ctx, args[1:])
	case "hub":
		return runDPSHub(ctx, args[1:])
	case "enrollment":
		return runDPSEnrollment(ctx, args[1:], false)
	case "group":
		return runDPSEnrollment(ctx, args[1:], true)
	case "registration":
		return runDPSRegistration(ctx, args[1:])
	case "ca":
		return runDPSCA(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Print(dpsUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, dpsUsage)
	return fmt.Errorf("dps: unknown command %q", args[0])
}

// ---- serve ----

type dpsServeConfig struct {
	serveConfig
	IDScope string
}

func parseDPSServe(args []string) (dpsServeConfig, error) {
	var c dpsServeConfig
	fs := flag.NewFlagSet("dps serve", flag.ContinueOnError)
	// 9091: a hub on the same machine has 9090.
	hosts := c.commonFlags(fs, "./data-dps", "127.0.0.1:9091")
	fs.StringVar(&c.IDScope, "id-scope", "", "ID scope devices name (default: the stored one, else a generated 0ne… scope)")
	pos, err := loadSources(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, fmt.Errorf("dps serve: unexpected argument %q", pos[0])
	}
	c.HostNames = hosts.vals
	c.AuthTimeout = time.Second // unused by dps; keeps serveConfig.validate happy
	if err := c.serveConfig.validate(); err != nil {
		return c, fmt.Errorf("dps %w", err)
	}
	if c.IDScope != "" && (len(c.IDScope) > 64 || strings.ContainsAny(c.IDScope, "/?#& ")) {
		return c, errors.New("dps serve: --id-scope must be up to 64 characters without / ? # & or spaces")
	}
	return c, nil
}

func runDPSServe(ctx context.Context, args []string) error {
	cfg, err := parseDPSServe(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	tlsConf, err := serverTLS(cfg.serveConfig, log)
	if err != nil {
		return err
	}
	var store provisioning.Store
	if cfg.RedisURL != "" {
		store, err = dpsredis.Open(ctx, cfg.RedisURL, cfg.HostNames[0])
	} else {
		store, err = provisioning.OpenFileStore(filepath.Join(cfg.DataDir, "provisioning.jsonl"))
	}
	if err != nil {
		return err
	}
	defer store.Close()
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(promReg))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)).Meter("hubgate-dps")
	svc, err := provisioning.New(ctx, provisioning.Config{Store: store, IDScope: cfg.IDScope, Logger: log, ClockSkew: cfg.ClockSkew, Meter: meter})
	if err != nil {
		return err
	}
	defer svc.Close()
	p, _ := svc.Policy(provisioning.PolicyName)
	csPath := filepath.Join(cfg.DataDir, provisioning.PolicyName+".connection-string")
	cs := fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", cfg.HostNames[0], p.KeyName, p.PrimaryKey)
	if err := os.WriteFile(csPath, []byte(cs), 0o600); err != nil {
		return fmt.Errorf("connection string: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "id-scope"), []byte(svc.IDScope()+"\n"), 0o644); err != nil {
		return fmt.Errorf("id scope: %w", err)
	}
	fmt.Fprintf(os.Stderr, "hubgate: dps id scope: %s\nhubgate: %s connection string: %s\n", svc.IDScope(), provisioning.PolicyName, csPath)

	head, err := provisioning.NewMQTT(svc, log)
	if err != nil {
		return err
	}
	amqpHead := amqphead.New(svc, log)
	mqttLn, amqpLn, httpsLn, metricsLn, err := cfg.listen()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(broker.WebSocketPath, broker.NewWebSocket(log, map[string]broker.ConnAcceptor{"mqtt": head, "AMQPWSB10": amqpHead}))
	mux.Handle("/", provisioning.NewHTTP(svc, cfg.HostNames, log))
	httpsSrv := &http.Server{Handler: mux, TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	var ready atomic.Bool
	metricsSrv := &http.Server{Handler: opsMux(promReg, &ready, nil), ReadHeaderTimeout: 5 * time.Second}

	errc := make(chan error, 4)
	go func() { errc <- head.Serve(tls.NewListener(mqttLn, tlsConf)) }()
	go func() { errc <- amqpHead.Serve(tls.NewListener(amqpLn, tlsConf)) }()
	go func() { errc <- ignoreClosed(httpsSrv.Serve(tls.NewListener(httpsLn, tlsConf))) }()
	go func() { errc <- ignoreClosed(metricsSrv.Serve(metricsLn)) }()
	ready.Store(true)
	log.Info("hubgate dps serving", "hostnames", cfg.HostNames, "id_scope", svc.IDScope(),
		"mqtt_addr", mqttLn.Addr().String(), "amqp_addr", amqpLn.Addr().String(), "https_addr", httpsLn.Addr().String(), "metrics_addr", metricsLn.Addr().String())
	select {
	case <-ctx.Done():
	case err = <-errc:
		log.Error("listener failed", "error", err)
	}
	ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = httpsSrv.Shutdown(sctx)
	_ = head.Shutdown(sctx)
	_ = amqpHead.Shutdown(sctx)
	_ = metricsSrv.Shutdown(sctx)
	return err
}

// ---- admin ----

type dpsAdmin struct {
	connString, address, caFile, dataDir string
}

func (a *dpsAdmin) register(fs *flag.FlagSet) {
	fs.StringVar(&a.connString, "connection-string", "", "provisioning service connection string (env HUBGATE_DPS_CONNECTION_STRING)")
	fs.StringVar(&a.address, "dps-address", "", "HOST:PORT to dial (default: HostName:443)")
	fs.StringVar(&a.caFile, "ca-file", "", "extra CA certificate to trust (env HUBGATE_DPS_CA_FILE)")
	fs.StringVar(&a.dataDir, "data-dir", "./data-dps", "where a local service keeps its connection string and dev CA")
}

// fixEnv undoes what loadSources read from the hub's variables
// (HUBGATE_CONNECTION_STRING, HUBGATE_CA_FILE): the dps commands have their own.
func (a *dpsAdmin) fixEnv(args []string) {
	given := func(name string) bool {
		for _, x := range args {
			if x == "--"+name || x == "-"+name || strings.HasPrefix(x, "--"+name+"=") || strings.HasPrefix(x, "-"+name+"=") {
				return true
			}
		}
		return false
	}
	if !given("connection-string") {
		a.connString = os.Getenv("HUBGATE_DPS_CONNECTION_STRING")
	}
	if !given("ca-file") {
		a.caFile = os.Getenv("HUBGATE_DPS_CA_FILE")
	}
}

func (a *dpsAdmin) client() (*hubclient.Client, error) {
	cs := a.connString
	if cs == "" {
		p := filepath.Join(a.dataDir, provisioning.PolicyName+".connection-string")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, errors.New("no --connection-string given (nor HUBGATE_DPS_CONNECTION_STRING, nor a local " + p + ")")
		}
		cs = strings.TrimSpace(string(b))
	}
	caFile := a.caFile
	if caFile == "" {
		if p := filepath.Join(a.dataDir, "dev-ca.pem"); fileExists(p) {
			caFile = p
		}
	}
	return hubclient.New(cs, hubclient.Options{Address: a.address, CAFile: caFile, APIVersion: "2021-10-01"})
}

func runDPSHub(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("dps hub: missing subcommand (link, list, unlink)")
	}
	sub := args[0]
	var a dpsAdmin
	fs := flag.NewFlagSet("dps hub "+sub, flag.ContinueOnError)
	a.register(fs)
	hubCS := fs.String("hub-connection-string", "", "the hub's iothubowner or registryReadWrite connection string")
	weight := fs.Int("allocation-weight", 1, "share of hashed allocations")
	hubAddr := fs.String("hub-address", "", "HOST:PORT of the hub's HTTPS registry API (default: its HostName:443)")
	hubCA := fs.String("hub-ca-file", "", "CA certificate (PEM) the hub's server certificate chains to")
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	a.fixEnv(args[1:])
	c, err := a.client()
	if err != nil {
		return err
	}
	var out any
	switch sub {
	case "link":
		if len(pos) != 1 || *hubCS == "" {
			return errors.New("dps hub link NAME --hub-connection-string CS")
		}
		body := provisioning.LinkedHub{ConnectionString: *hubCS, AllocationWeight: *weight, Address: *hubAddr}
		if *hubCA != "" {
			pem, err := os.ReadFile(*hubCA)
			if err != nil {
				return err
			}
			body.CAPEM = string(pem)
		}
		err = c.Do(ctx, http.MethodPut, "/linkedHubs/"+url.PathEscape(pos[0]), "", body, &out)
	case "list":
		err = c.Do(ctx, http.MethodGet, "/linkedHubs", "", nil, &out)
	case "unlink":
		if len(pos) != 1 {
			return errors.New("dps hub unlink NAME")
		}
		err = c.Do(ctx, http.MethodDelete, "/linkedHubs/"+url.PathEscape(pos[0]), "", nil, nil)
		out = map[string]string{"unlinked": pos[0]}
	default:
		return fmt.Errorf("dps hub: unknown subcommand %q", sub)
	}
	if err != nil {
		return err
	}
	return printJSON(out)
}

func runDPSEnrollment(ctx context.Context, args []string, group bool) error {
	what, prefix := "enrollment", "/enrollments/"
	if group {
		what, prefix = "group", "/enrollmentGroups/"
	}
	if len(args) == 0 {
		return fmt.Errorf("dps %s: missing subcommand (create, update, get, list, delete, revoke%s)", what, map[bool]string{false: ", move"}[group])
	}
	sub := args[0]
	var a dpsAdmin
	fs := flag.NewFlagSet("dps "+what+" "+sub, flag.ContinueOnError)
	a.register(fs)
	att := fs.String("attestation", "symmetricKey", "symmetricKey or x509")
	pk := fs.String("primary-key", "", "primary symmetric key (default: generated)")
	sk := fs.String("secondary-key", "", "secondary symmetric key (default: generated)")
	cert := fs.String("cert", "", "x509: the device certificate (enrollment) or signing CA (group), PEM")
	cert2 := fs.String("secondary-cert", "", "x509: secondary certificate, PEM")
	caRef := fs.String("ca-ref", "", "x509 group: a CA registered with `dps ca add` (instead of --cert)")
	caRef2 := fs.String("secondary-ca-ref", "", "x509 group: a second registered CA")
	devID := fs.String("device-id", "", "device id in the hub (enrollment; default: the registration id)")
	hubs := &listFlag{}
	fs.Var(hubs, "iot-hubs", "hubs the enrollment may use: link names or host names (default: all linked hubs)")
	hub := fs.String("hub", "", "move: the one hub the enrollment is restricted to")
	alloc := fs.String("allocation", "", "hashed (default), static or custom")
	webhook := fs.String("webhook-url", "", "custom allocation webhook")
	repro := fs.String("reprovision", "", "migrate (default), reset or never")
	disabled := fs.Bool("disabled", false, "provisioningStatus disabled")
	edge := fs.Bool("edge", false, "capabilities.iotEdge")
	cascade := fs.Bool("cascade", false, "revoke: also delete the identity in the assigned hub")
	cascadeDisable := fs.Bool("cascade-disable", false, "revoke: also disable the identity in the assigned hub")
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	a.fixEnv(args[1:])
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if sub != "list" && len(pos) != 1 {
		return fmt.Errorf("dps %s %s: exactly one id expected", what, sub)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var out map[string]any
	switch sub {
	case "get":
		err = c.Do(ctx, http.MethodGet, prefix+url.PathEscape(pos[0]), "", nil, &out)
	case "list":
		var list []map[string]any
		if err := c.Do(ctx, http.MethodPost, prefix+"query", "", map[string]string{"query": "*"}, &list); err != nil {
			return err
		}
		if list == nil {
			list = []map[string]any{}
		}
		return printJSON(list)
	case "delete":
		err = c.Do(ctx, http.MethodDelete, prefix+url.PathEscape(pos[0]), "*", nil, nil)
		out = map[string]any{"deleted": pos[0]}
	case "revoke":
		body := map[string]string{}
		switch {
		case *cascade && *cascadeDisable:
			return errors.New("--cascade and --cascade-disable exclude each other")
		case *cascade:
			body["cascade"] = "delete"
		case *cascadeDisable:
			body["cascade"] = "disable"
		}
		err = c.Do(ctx, http.MethodPost, prefix+url.PathEscape(pos[0])+"/revoke", "", body, &out)
	case "create", "update", "move":
		if sub == "move" {
			if group || *hub == "" {
				return errors.New("dps enrollment move ID --hub NAME")
			}
			hubs.vals, set["iot-hubs"] = []string{*hub}, true
		}
		doc := map[string]any{}
		etag := ""
		if sub != "create" {
			if err := c.Do(ctx, http.MethodGet, prefix+url.PathEscape(pos[0]), "", nil, &doc); err != nil {
				return err
			}
			etag, _ = doc["etag"].(string)
			delete(doc, "registrationState")
		} else {
			if group {
				doc["enrollmentGroupId"] = pos[0]
			} else {
				doc["registrationId"] = pos[0]
			}
		}
		if err := applyEnrollmentFlags(doc, set, group, enrollmentFlags{att: *att, pk: *pk, sk: *sk, cert: *cert, cert2: *cert2, caRef: *caRef, caRef2: *caRef2,
			devID: *devID, hubs: hubs.vals, alloc: *alloc, webhook: *webhook, repro: *repro, disabled: *disabled, edge: *edge}, sub == "create"); err != nil {
			return err
		}
		err = c.Do(ctx, http.MethodPut, prefix+url.PathEscape(pos[0]), etag, doc, &out)
	default:
		return fmt.Errorf("dps %s: unknown subcommand %q", what, sub)
	}
	if err != nil {
		return err
	}
	return printJSON(out)
}

type enrollmentFlags struct {
	att, pk, sk, cert, cert2, devID string
	caRef, caRef2                   string
	hubs                            []string
	alloc, webhook, repro           string
	disabled, edge                  bool
}

func applyEnrollmentFlags(doc map[string]any, set map[string]bool, group bool, f enrollmentFlags, create bool) error {
	if create || set["attestation"] || set["primary-key"] || set["secondary-key"] || set["cert"] || set["secondary-cert"] || set["ca-ref"] {
		switch f.att {
		case "symmetricKey", "symmetric-key", "sas":
			doc["attestation"] = map[string]any{"type": "symmetricKey",
				"symmetricKey": map[string]string{"primaryKey": f.pk, "secondaryKey": f.sk}}
		case "x509":
			if f.caRef != "" {
				if !group {
					return errors.New("--ca-ref is for enrollment groups")
				}
				doc["attestation"] = map[string]any{"type": "x509", "x509": map[string]any{
					"caReferences": map[string]string{"primary": f.caRef, "secondary": f.caRef2}}}
				break
			}
			if f.cert == "" {
				return errors.New("--attestation x509 needs --cert FILE (or, for a group, --ca-ref NAME)")
			}
			certs := map[string]any{}
			for slot, file := range map[string]string{"primary": f.cert, "secondary": f.cert2} {
				if file == "" {
					continue
				}
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				certs[slot] = map[string]string{"certificate": string(b)}
			}
			key := "clientCertificates"
			if group {
				key = "signingCertificates"
			}
			doc["attestation"] = map[string]any{"type": "x509", "x509": map[string]any{key: certs}}
		default:
			return fmt.Errorf("--attestation must be symmetricKey or x509, not %q", f.att)
		}
	}
	if set["device-id"] {
		if group {
			return errors.New("--device-id is for individual enrollments (a group's devices use their registration ids)")
		}
		doc["deviceId"] = f.devID
	}
	if set["iot-hubs"] {
		doc["iotHubs"] = f.hubs
		delete(doc, "iotHubHostName")
	}
	if set["allocation"] {
		doc["allocationPolicy"] = f.alloc
	}
	if set["webhook-url"] {
		doc["customAllocationDefinition"] = map[string]string{"webhookUrl": f.webhook, "apiVersion": "2021-10-01"}
	}
	if set["reprovision"] {
		switch f.repro {
		case "migrate":
			doc["reprovisionPolicy"] = map[string]bool{"updateHubAssignment": true, "migrateDeviceData": true}
		case "reset":
			doc["reprovisionPolicy"] = map[string]bool{"updateHubAssignment": true, "migrateDeviceData": false}
		case "never":
			doc["reprovisionPolicy"] = map[string]bool{"updateHubAssignment": false, "migrateDeviceData": false}
		default:
			return fmt.Errorf("--reprovision must be migrate, reset or never, not %q", f.repro)
		}
	}
	if create || set["disabled"] {
		doc["provisioningStatus"] = map[bool]string{false: "enabled", true: "disabled"}[f.disabled]
	}
	if set["edge"] {
		doc["capabilities"] = map[string]bool{"iotEdge": f.edge}
	}
	return nil
}

func runDPSRegistration(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("dps registration: missing subcommand (get, delete)")
	}
	sub := args[0]
	var a dpsAdmin
	fs := flag.NewFlagSet("dps registration "+sub, flag.ContinueOnError)
	a.register(fs)
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	a.fixEnv(args[1:])
	if len(pos) != 1 {
		return errors.New("dps registration get|delete ID")
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var out any
	switch sub {
	case "get":
		err = c.Do(ctx, http.MethodGet, "/registrations/"+url.PathEscape(pos[0]), "", nil, &out)
	case "delete":
		err = c.Do(ctx, http.MethodDelete, "/registrations/"+url.PathEscape(pos[0]), "*", nil, nil)
		out = map[string]string{"deleted": pos[0]}
	default:
		return fmt.Errorf("dps registration: unknown subcommand %q", sub)
	}
	if err != nil {
		return err
	}
	return printJSON(out)
}

func runDPSCA(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("dps ca: missing subcommand (add, list, get, delete, verification-code, verify)")
	}
	sub := args[0]
	var a dpsAdmin
	fs := flag.NewFlagSet("dps ca "+sub, flag.ContinueOnError)
	a.register(fs)
	verified := fs.Bool("verified", false, "mark the CA verified at upload (the operator vouches for possession)")
	certFile := fs.String("cert", "", "verification certificate (CN = verification code) for `ca verify`")
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	a.fixEnv(args[1:])
	want := map[string]int{"add": 2, "list": 0, "get": 1, "delete": 1, "verification-code": 1, "verify": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("dps ca: unknown subcommand %q", sub)
	}
	if len(pos) != n {
		return fmt.Errorf("dps ca %s: %d argument(s) expected", sub, n)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var out any
	path := "/certificates"
	if n > 0 {
		path += "/" + url.PathEscape(pos[0])
	}
	switch sub {
	case "add":
		pem, err := os.ReadFile(pos[1])
		if err != nil {
			return err
		}
		err = c.Do(ctx, http.MethodPut, path, "", map[string]any{"certificate": string(pem), "isVerified": *verified}, &out)
		if err != nil {
			return err
		}
	case "list", "get":
		if err := c.Do(ctx, http.MethodGet, path, "", nil, &out); err != nil {
			return err
		}
	case "delete":
		if err := c.Do(ctx, http.MethodDelete, path, "", nil, nil); err != nil {
			return err
		}
		out = map[string]string{"deleted": pos[0]}
	case "verification-code":
		if err := c.Do(ctx, http.MethodPost, path+"/generateVerificationCode", "", nil, &out); err != nil {
			return err
		}
	case "verify":
		if *certFile == "" {
			return errors.New("dps ca verify: --cert FILE is required")
		}
		pem, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		if err := c.Do(ctx, http.MethodPost, path+"/verify", "", map[string]string{"certificate": string(pem)}, &out); err != nil {
			return err
		}
	}
	return printJSON(out)
}
