package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker"
	amqphead "github.com/hubgate/hubgate/broker/amqp"
	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
	"github.com/hubgate/hubgate/registry/httpapi"
	"github.com/hubgate/hubgate/registry/redisstore"
)

// serveConfig is everything `hubgate serve` takes.
type serveConfig struct {
	DataDir     string
	HostNames   []string
	MQTTAddr    string
	AMQPAddr    string
	HTTPSAddr   string
	MetricsAddr string
	TLSCert     string
	TLSKey      string
	ClockSkew   time.Duration
	LogLevel    slog.Level
	RedisURL    string
	Node        string
	AuthTimeout time.Duration
	Cache       registry.CacheOptions
}

// commonFlags registers the flags `serve` and `dps serve` share: where the
// process keeps its data, its names, its listeners, TLS, logs and Redis.
func (c *serveConfig) commonFlags(fs *flag.FlagSet, dataDir, metricsAddr string) *listFlag {
	hosts := &listFlag{vals: []string{"localhost"}}
	fs.String("config", "", "JSON config file of flag names to values (env HUBGATE_CONFIG)")
	fs.StringVar(&c.DataDir, "data-dir", dataDir, "directory for the store, certificates and connection strings")
	fs.Var(hosts, "hostname", "host names (repeatable or comma-separated); the first is the service's name")
	fs.StringVar(&c.MQTTAddr, "mqtt-addr", ":8883", "MQTT over TLS listen address")
	fs.StringVar(&c.AMQPAddr, "amqp-addr", ":5671", "AMQP 1.0 over TLS listen address")
	fs.StringVar(&c.HTTPSAddr, "https-addr", ":443", "HTTPS listen address: REST API and /$iothub/websocket")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", metricsAddr, "plain-HTTP address for /metrics, /healthz, /readyz")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "server certificate (PEM); default: a generated development certificate")
	fs.StringVar(&c.TLSKey, "tls-key", "", "server key (PEM)")
	fs.DurationVar(&c.ClockSkew, "clock-skew", 5*time.Minute, "SAS expiry and certificate validity leeway")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	fs.StringVar(&c.RedisURL, "redis-url", "", "shared store for several nodes: redis://, rediss://, redis+sentinel://h:p,h:p/master, redis+cluster://h:p,h:p (default: the embedded store)")
	return hosts
}

func parseServe(args []string) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	hosts := c.commonFlags(fs, "./data", "127.0.0.1:9090")
	fs.StringVar(&c.Node, "node", defaultNode(), "this node's name among the hub's nodes")
	// 250 ms: a warm decision takes microseconds and a Redis miss ~0.1 ms;
	// past this the registry is unavailable and the device hears CONNACK 3.
	fs.DurationVar(&c.AuthTimeout, "auth-timeout", 250*time.Millisecond, "bound on one auth decision, registry lookups included")
	fs.DurationVar(&c.Cache.TTL, "cache-ttl", 5*time.Minute, "registry cache entry lifetime (a safety net: change events invalidate)")
	fs.DurationVar(&c.Cache.NegativeTTL, "cache-negative-ttl", 5*time.Second, "how long an unknown device id is remembered")
	fs.DurationVar(&c.Cache.MaxStale, "cache-max-stale", 30*time.Minute, "how long past its TTL a cached device is still served while the registry is unavailable")
	pos, err := loadSources(fs, args)
	if err != nil {
		return c, err
	}
	if len(pos) > 0 {
		return c, fmt.Errorf("serve: unexpected argument %q", pos[0])
	}
	c.HostNames = hosts.vals
	return c, c.validate()
}

func (c serveConfig) validate() error {
	if len(c.HostNames) == 0 {
		return errors.New("serve: at least one --hostname is required")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("serve: --tls-cert and --tls-key go together")
	}
	if c.AuthTimeout <= 0 || c.AuthTimeout > time.Minute {
		return errors.New("serve: --auth-timeout must be between 0 and 1m")
	}
	if c.ClockSkew < 0 || c.ClockSkew > time.Hour {
		return errors.New("serve: --clock-skew must be between 0 and 1h")
	}
	return nil
}

func runServe(ctx context.Context, args []string) error {
	cfg, err := parseServe(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	tlsConf, err := serverTLS(cfg, log)
	if err != nil {
		return err
	}

	var store registry.Store
	var shared *redisstore.Store // nil on the embedded store
	if cfg.RedisURL != "" {
		redis.SetLogger(redisLogger{log})
		shared, err = redisstore.Open(ctx, redisstore.Options{URL: cfg.RedisURL, Hub: cfg.HostNames[0], Logger: log})
		store = shared
	} else {
		store, err = registry.OpenFileStore(filepath.Join(cfg.DataDir, "registry.jsonl"))
	}
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer store.Close()
	reg, err := registry.New(ctx, store, registry.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := writeOwnerConnectionString(cfg, reg, log); err != nil {
		return err
	}
	cache := registry.NewCache(reg, cfg.Cache)

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(promReg))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)).Meter("hubgate")
	if err := cacheMetrics(meter, cache); err != nil {
		return err
	}

	auth, err := authn.New(authn.Config{
		HostNames: cfg.HostNames, ClockSkew: cfg.ClockSkew,
		Devices: cache, Policies: reg, CAs: reg,
	})
	if err != nil {
		return err
	}
	var claims *broker.Claimer // one connection per device across the hub's nodes
	if shared != nil {
		claims = broker.NewClaimer(shared, cfg.Node, log)
		defer claims.Close()
	}
	head, err := broker.NewMQTT(broker.Config{Auth: auth, Devices: cache, Logger: log, Meter: meter,
		AuthTimeout: cfg.AuthTimeout, Claims: claims, Node: cfg.Node})
	if err != nil {
		return err
	}
	// The AMQP head delivers into and from the MQTT head's topic space.
	amqpHead, err := amqphead.New(amqphead.Config{Auth: auth, Devices: cache, Bus: head, HostNames: cfg.HostNames,
		Logger: log, Meter: meter, AuthTimeout: cfg.AuthTimeout, Claims: claims, Node: cfg.Node})
	if err != nil {
		return err
	}
	// Registry changes: drop the cache entry, then re-check live sessions.
	follower := &broker.Follower{Cache: cache, Current: reg, Heads: []broker.Rechecker{head, amqpHead},
		CAChanged: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := reg.RefreshCAs(ctx); err != nil {
				log.Warn("CA pool not refreshed", "error", err)
			}
		}}
	unsubscribe := reg.Subscribe(follower.Apply)
	defer unsubscribe()
	if shared != nil {
		// Other nodes' writes and session claims arrive over Redis.
		watchCtx, stopWatch := context.WithCancel(context.Background())
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			_ = shared.Watch(watchCtx, &remoteEvents{f: follower, cache: cache, heads: []claimHandler{head, amqpHead}, log: log})
		}()
		defer func() { stopWatch(); <-watchDone }()
	}

	mqttLn, amqpLn, httpsLn, metricsLn, err := cfg.listen()
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle(broker.WebSocketPath, broker.NewWebSocket(log, map[string]broker.ConnAcceptor{"mqtt": head, "AMQPWSB10": amqpHead}))
	mux.Handle("/", httpapi.New(reg, auth, httpapi.Options{Logger: log}))
	httpsSrv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	var ready atomic.Bool
	var pinger func(context.Context) error
	if shared != nil {
		pinger = shared.Ping
	}
	metricsSrv := &http.Server{Handler: opsMux(promReg, &ready, pinger), ReadHeaderTimeout: 5 * time.Second}

	errc := make(chan error, 4)
	go func() { errc <- head.Serve(tls.NewListener(mqttLn, tlsConf)) }()
	go func() { errc <- amqpHead.Serve(tls.NewListener(amqpLn, tlsConf)) }()
	go func() { errc <- ignoreClosed(httpsSrv.Serve(tls.NewListener(httpsLn, tlsConf))) }()
	go func() { errc <- ignoreClosed(metricsSrv.Serve(metricsLn)) }()
	ready.Store(true)
	log.Info("hubgate serving", "hub", cfg.HostNames[0], "hostnames", cfg.HostNames,
		"mqtt_addr", mqttLn.Addr().String(), "amqp_addr", amqpLn.Addr().String(), "https_addr", httpsLn.Addr().String(),
		"metrics_addr", metricsLn.Addr().String(), "data_dir", cfg.DataDir)

	select {
	case <-ctx.Done():
	case err = <-errc:
		log.Error("listener failed", "error", err)
	}
	// Drain: not ready first, then stop accepting, then close sessions.
	ready.Store(false)
	log.Info("hubgate shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = httpsSrv.Shutdown(sctx)
	_ = amqpHead.Shutdown(sctx) // before MQTT: it is the AMQP head's bus
	_ = head.Shutdown(sctx)
	_ = metricsSrv.Shutdown(sctx)
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// serverTLS loads the configured certificate or the development one. Client
// certificates are requested, not required: SAS devices have none.
func serverTLS(cfg serveConfig, log *slog.Logger) (*tls.Config, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if certFile == "" {
		dc, err := pki.EnsureDevCerts(cfg.DataDir, cfg.HostNames)
		if err != nil {
			return nil, fmt.Errorf("development certificates: %w", err)
		}
		certFile, keyFile = dc.CertFile, dc.KeyFile
		log.Info("using development certificates; trust this CA in clients", "ca_file", dc.CAFile, "generated", dc.Created)
		fmt.Fprintf(os.Stderr, "hubgate: development CA: %s\n", dc.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// writeOwnerConnectionString writes the iothubowner connection string (mode
// 0600) and prints its path; the key itself is never logged.
func writeOwnerConnectionString(cfg serveConfig, reg *registry.Registry, log *slog.Logger) error {
	p, ok := reg.Policy("iothubowner")
	if !ok {
		return errors.New("registry: iothubowner policy missing")
	}
	path := filepath.Join(cfg.DataDir, "iothubowner.connection-string")
	cs := fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s", cfg.HostNames[0], p.KeyName, p.PrimaryKey)
	if old, err := os.ReadFile(path); err != nil || string(old) != cs {
		if err := os.WriteFile(path, []byte(cs), 0o600); err != nil {
			return fmt.Errorf("connection string: %w", err)
		}
	}
	log.Info("service connection string written", "path", path, "policy", p.KeyName)
	fmt.Fprintf(os.Stderr, "hubgate: iothubowner connection string: %s\n", path)
	return nil
}

func opsMux(reg *prometheus.Registry, ready *atomic.Bool, redisPing func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles for operators; the metrics address is loopback by default.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if redisPing != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if err := redisPing(ctx); err != nil {
				// Cached devices are still served, but this node cannot
				// take new ones or registry writes: let balancers know.
				http.Error(w, "redis: unavailable", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready\nredis: ok\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// cacheMetrics exports the registry cache's hit and miss counts.
func cacheMetrics(meter metric.Meter, c *registry.Cache) error {
	_, err := meter.Int64ObservableCounter("hubgate.registry.cache.lookups",
		metric.WithDescription("Registry cache lookups by result (hit, miss, negative_hit)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			hits, misses, neg := c.CacheStats()
			o.Observe(int64(hits), metric.WithAttributes(resultAttr("hit")))
			o.Observe(int64(misses), metric.WithAttributes(resultAttr("miss")))
			o.Observe(int64(neg), metric.WithAttributes(resultAttr("negative_hit")))
			return nil
		}))
	return err
}

func resultAttr(v string) attribute.KeyValue { return attribute.String("result", v) }

// remoteEvents receives what other nodes of the hub publish over Redis.
type remoteEvents struct {
	f     *broker.Follower
	cache *registry.Cache
	heads []claimHandler
	log   *slog.Logger
}

type claimHandler interface {
	SessionClaimed(deviceID, node string, at time.Time)
}

func (e *remoteEvents) Change(ch registry.Change) { e.f.Apply(ch) }

func (e *remoteEvents) SessionClaimed(deviceID, node string, at time.Time) {
	for _, h := range e.heads {
		h.SessionClaimed(deviceID, node, at)
	}
}

// Resubscribed: events sent while this node was not subscribed are lost, so
// everything cached may be stale.
func (e *remoteEvents) Resubscribed() {
	e.cache.Flush()
	e.log.Info("registry change feed subscribed; cache flushed")
	if e.f.CAChanged != nil {
		go e.f.CAChanged()
	}
}

// redisLogger routes go-redis's own messages (dial failures during an
// outage) into our structured log at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis", "message", fmt.Sprintf(format, v...))
}

func defaultNode() string {
	h, err := os.Hostname()
	if err != nil {
		h = "node"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// listen opens the four listeners `serve` and `dps serve` both have; on an
// error the ones already open are closed.
func (c serveConfig) listen() (mqtt, amqp, https, metrics net.Listener, err error) {
	addrs := []struct{ what, addr string }{
		{"mqtt", c.MQTTAddr}, {"amqp", c.AMQPAddr}, {"https", c.HTTPSAddr}, {"metrics", c.MetricsAddr},
	}
	lns := make([]net.Listener, 0, len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, nil, nil, nil, fmt.Errorf("%s listener: %w", a.what, err)
		}
		lns = append(lns, ln)
	}
	return lns[0], lns[1], lns[2], lns[3], nil
}
