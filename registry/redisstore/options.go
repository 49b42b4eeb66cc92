package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure Open. Exactly one of URL and Universal is set.
type Options struct {
	// URL is a redis://, rediss://, redis+sentinel://, rediss+sentinel://,
	// redis+cluster:// or rediss+cluster:// URL; see ParseURL.
	URL string
	// Universal is the alternative to URL for what a URL cannot say (a
	// custom TLS config, a credentials provider): MasterName set means
	// Sentinel, two or more Addrs (or IsClusterMode) mean Cluster, one Addr
	// a single server. Open copies it; zero timeouts get the defaults below.
	Universal *redis.UniversalOptions
	// Hub is the hub name; every key and channel of the hub lives under a
	// prefix derived from it (see doc.go). Required.
	Hub string
	// Logger receives change-feed reconnects; default slog.Default().
	Logger *slog.Logger
}

// Defaults for the auth path: a dead or unreachable Redis must fail a
// registry read quickly (the connect path's bound is 250 ms by default,
// DESIGN.md "Outages"), so the socket timeouts sit below it, dialing is
// tried once per call, and commands are not retried.
const (
	defaultDialTimeout  = 200 * time.Millisecond
	defaultReadTimeout  = 200 * time.Millisecond
	defaultWriteTimeout = 200 * time.Millisecond
	// go-redis reads MaxRetries 0 as "3"; -1 disables retries. No retries:
	// a write script retried after a lost reply would hit its own etag and
	// report a spurious ErrPreconditionFailed, and for reads the cache,
	// not the client, decides what to do when Redis does not answer.
	defaultMaxRetries = -1
	// One dial attempt per call (go-redis defaults to 5 with 100 ms pauses,
	// which alone would exceed the auth deadline).
	defaultDialerRetries = 1
)

// withDefaults returns a copy of u with unset timeouts and retry knobs set
// to the defaults above and context deadlines honoured on sockets.
func withDefaults(u *redis.UniversalOptions) *redis.UniversalOptions {
	c := *u
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = defaultMaxRetries
	}
	if c.DialerRetries == 0 {
		c.DialerRetries = defaultDialerRetries
	}
	c.ContextTimeoutEnabled = true
	return &c
}

func (o *Options) validate() error {
	if o.Hub == "" {
		return errors.New("redisstore: Options.Hub is empty; every hub needs a name (it prefixes the keys)")
	}
	if (o.URL == "") == (o.Universal == nil) {
		return errors.New("redisstore: set exactly one of Options.URL and Options.Universal")
	}
	return nil
}

// ParseURL turns a Redis URL into client options. Accepted forms:
//
//	redis://[user:password@]host[:port][/db][?option=value&...]
//	rediss://...                                    (TLS)
//	redis+sentinel://[user:password@]host[:port][,host[:port]...]/mastername[/db][?...]
//	redis+cluster://[user:password@]host[:port][,host[:port]...][?...]
//	rediss+sentinel://..., rediss+cluster://...     (TLS)
//
// The redis:// forms are go-redis ParseURL (options such as dial_timeout,
// read_timeout, pool_size, max_retries, client_name as query parameters).
// Sentinel: the hosts are sentinels (default port 26379); user and password
// are the master's; sentinel_username and sentinel_password query
// parameters authenticate to the sentinels when they require it. Cluster:
// the hosts are seed nodes (default port 6379) and go-redis ParseClusterURL
// options apply. Unset timeouts get the fail-fast defaults of Open.
func ParseURL(s string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("redisstore: URL %q has no scheme; want redis://, rediss://, redis+sentinel:// or redis+cluster://", redactURL(s))
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("redisstore: URL %s: %w", redactURL(s), err)
		}
		if o.Network != "" && o.Network != "tcp" {
			return nil, fmt.Errorf("redisstore: URL %s: network %q is not supported", redactURL(s), o.Network)
		}
		return fromSimple(o), nil
	case "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster":
		base, kind, _ := strings.Cut(scheme, "+")
		return parseMulti(base, kind, rest, s)
	default:
		return nil, fmt.Errorf("redisstore: URL %s: unknown scheme %q; want redis://, rediss://, redis+sentinel:// or redis+cluster://", redactURL(s), scheme)
	}
}

// parseMulti handles the comma-separated host lists, which net/url cannot
// parse, by rewriting them into the go-redis forms (first host in the
// authority, the others as addr= parameters).
func parseMulti(base, kind, rest, orig string) (*redis.UniversalOptions, error) {
	authority, tailPart := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tailPart = rest[:i], rest[i:]
	}
	var userinfo string
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	defPort := "6379"
	if kind == "sentinel" {
		defPort = "26379"
	}
	var hosts []string
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defPort)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("redisstore: URL %s names no hosts", redactURL(orig))
	}
	u, err := url.Parse(base + "://" + hosts[0] + tailPart)
	if err != nil {
		return nil, fmt.Errorf("redisstore: URL %s: %w", redactURL(orig), err)
	}
	var user, pass string
	if userinfo != "" {
		ui, err := url.Parse(base + "://" + userinfo + "@h")
		if err != nil || ui.User == nil {
			return nil, fmt.Errorf("redisstore: URL %s: bad user information", redactURL(orig))
		}
		user = ui.User.Username()
		pass, _ = ui.User.Password()
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	path := strings.Trim(u.Path, "/")
	u.Path = ""

	switch kind {
	case "cluster":
		if path != "" {
			return nil, fmt.Errorf("redisstore: URL %s: a cluster URL has no path (Cluster has no databases)", redactURL(orig))
		}
		u.RawQuery = q.Encode()
		co, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redisstore: URL %s: %w", redactURL(orig), err)
		}
		uo := fromCluster(co)
		uo.Username, uo.Password = user, pass
		return uo, nil
	default: // sentinel
		master, db, _ := strings.Cut(path, "/")
		if master == "" {
			return nil, fmt.Errorf("redisstore: URL %s: a sentinel URL needs the master name as its path (redis+sentinel://host:26379/mymaster)", redactURL(orig))
		}
		sentUser, sentPass := q.Get("sentinel_username"), q.Get("sentinel_password")
		q.Del("sentinel_username")
		q.Del("sentinel_password")
		q.Set("master_name", master)
		if db != "" {
			u.Path = "/" + db
		}
		u.RawQuery = q.Encode()
		fo, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redisstore: URL %s: %w", redactURL(orig), err)
		}
		uo := fromFailover(fo)
		uo.Username, uo.Password = user, pass
		uo.SentinelUsername, uo.SentinelPassword = sentUser, sentPass
		return uo, nil
	}
}

// redactURL hides the password of a URL for error messages.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if strings.Contains(s, "@") {
			return "(redacted)"
		}
		return s
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		user, _, _ := strings.Cut(rest[:at], ":")
		rest = user + ":xxxxx" + rest[at:]
	}
	if strings.Contains(rest, "password=") {
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			rest = rest[:i] + "?(redacted)"
		}
	}
	return scheme + "://" + rest
}

func fromSimple(o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:              []string{o.Addr},
		ClientName:         o.ClientName,
		DB:                 o.DB,
		Protocol:           o.Protocol,
		Username:           o.Username,
		Password:           o.Password,
		MaxRetries:         o.MaxRetries,
		MinRetryBackoff:    o.MinRetryBackoff,
		MaxRetryBackoff:    o.MaxRetryBackoff,
		DialTimeout:        o.DialTimeout,
		DialerRetries:      o.DialerRetries,
		DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout:        o.ReadTimeout,
		WriteTimeout:       o.WriteTimeout,
		PoolFIFO:           o.PoolFIFO,
		PoolSize:           o.PoolSize,
		PoolTimeout:        o.PoolTimeout,
		MinIdleConns:       o.MinIdleConns,
		MaxIdleConns:       o.MaxIdleConns,
		MaxActiveConns:     o.MaxActiveConns,
		ConnMaxIdleTime:    o.ConnMaxIdleTime,
		ConnMaxLifetime:    o.ConnMaxLifetime,
		TLSConfig:          o.TLSConfig,
		DisableIdentity:    o.DisableIdentity,
	}
}

func fromCluster(o *redis.ClusterOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:              o.Addrs,
		IsClusterMode:      true, // also with a single seed address
		ClientName:         o.ClientName,
		Protocol:           o.Protocol,
		MaxRedirects:       o.MaxRedirects,
		ReadOnly:           o.ReadOnly,
		RouteByLatency:     o.RouteByLatency,
		RouteRandomly:      o.RouteRandomly,
		MaxRetries:         o.MaxRetries,
		MinRetryBackoff:    o.MinRetryBackoff,
		MaxRetryBackoff:    o.MaxRetryBackoff,
		DialTimeout:        o.DialTimeout,
		DialerRetries:      o.DialerRetries,
		DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout:        o.ReadTimeout,
		WriteTimeout:       o.WriteTimeout,
		PoolFIFO:           o.PoolFIFO,
		PoolSize:           o.PoolSize,
		PoolTimeout:        o.PoolTimeout,
		MinIdleConns:       o.MinIdleConns,
		MaxIdleConns:       o.MaxIdleConns,
		MaxActiveConns:     o.MaxActiveConns,
		ConnMaxIdleTime:    o.ConnMaxIdleTime,
		ConnMaxLifetime:    o.ConnMaxLifetime,
		TLSConfig:          o.TLSConfig,
		DisableIdentity:    o.DisableIdentity,
	}
}

func fromFailover(o *redis.FailoverOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:              o.SentinelAddrs,
		MasterName:         o.MasterName,
		ClientName:         o.ClientName,
		DB:                 o.DB,
		Protocol:           o.Protocol,
		MaxRetries:         o.MaxRetries,
		MinRetryBackoff:    o.MinRetryBackoff,
		MaxRetryBackoff:    o.MaxRetryBackoff,
		DialTimeout:        o.DialTimeout,
		DialerRetries:      o.DialerRetries,
		DialerRetryTimeout: o.DialerRetryTimeout,
		ReadTimeout:        o.ReadTimeout,
		WriteTimeout:       o.WriteTimeout,
		PoolFIFO:           o.PoolFIFO,
		PoolSize:           o.PoolSize,
		PoolTimeout:        o.PoolTimeout,
		MinIdleConns:       o.MinIdleConns,
		MaxIdleConns:       o.MaxIdleConns,
		MaxActiveConns:     o.MaxActiveConns,
		ConnMaxIdleTime:    o.ConnMaxIdleTime,
		ConnMaxLifetime:    o.ConnMaxLifetime,
		TLSConfig:          o.TLSConfig,
		DisableIdentity:    o.DisableIdentity,
	}
}
