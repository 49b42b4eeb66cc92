package redisstore

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		// checked fields
		addrs               []string
		master              string
		cluster, tls        bool
		user, pass, sentPwd string
		db                  int
		readTimeout         time.Duration
	}{
		{name: "ok/redis", url: "redis://127.0.0.1:6380", addrs: []string{"127.0.0.1:6380"}},
		{name: "ok/redis-default-port-db-auth", url: "redis://u:p%40ss@redis.example/3?read_timeout=1s",
			addrs: []string{"redis.example:6379"}, user: "u", pass: "p@ss", db: 3, readTimeout: time.Second},
		{name: "ok/rediss", url: "rediss://redis.example:6380", addrs: []string{"redis.example:6380"}, tls: true},
		{name: "ok/sentinel", url: "redis+sentinel://:pw@s1:26379,s2,s3:26380/mymaster/2?sentinel_password=spw",
			addrs: []string{"s1:26379", "s2:26379", "s3:26380"}, master: "mymaster", pass: "pw", sentPwd: "spw", db: 2},
		{name: "ok/sentinel-tls", url: "rediss+sentinel://s1/m", addrs: []string{"s1:26379"}, master: "m", tls: true},
		{name: "ok/cluster", url: "redis+cluster://u:pw@n1:7000,n2:7001,n3?dial_timeout=1s",
			addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, cluster: true, user: "u", pass: "pw"},
		{name: "ok/cluster-one-seed", url: "redis+cluster://n1:7000", addrs: []string{"n1:7000"}, cluster: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Addrs, tc.addrs) {
				t.Errorf("Addrs = %q, want %q", o.Addrs, tc.addrs)
			}
			if o.MasterName != tc.master || o.IsClusterMode != tc.cluster || (o.TLSConfig != nil) != tc.tls {
				t.Errorf("master %q cluster %v tls %v, want %q %v %v", o.MasterName, o.IsClusterMode, o.TLSConfig != nil, tc.master, tc.cluster, tc.tls)
			}
			if o.Username != tc.user || o.Password != tc.pass || o.SentinelPassword != tc.sentPwd {
				t.Errorf("credentials user %q pass %q sentinel %q, want %q %q %q", o.Username, o.Password, o.SentinelPassword, tc.user, tc.pass, tc.sentPwd)
			}
			if o.DB != tc.db || o.ReadTimeout != tc.readTimeout {
				t.Errorf("db %d read_timeout %v, want %d %v", o.DB, o.ReadTimeout, tc.db, tc.readTimeout)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct{ name, url string }{
		{"fail/no-scheme", "127.0.0.1:6379"},
		{"fail/unknown-scheme", "memcached://u:topsecret@h"},
		{"fail/unix", "unix:///tmp/redis.sock"},
		{"fail/sentinel-without-master", "redis+sentinel://u:topsecret@s1,s2"},
		{"fail/cluster-with-db", "redis+cluster://u:topsecret@n1,n2/1"},
		{"fail/no-hosts", "redis+cluster://u:topsecret@"},
		{"fail/unknown-option", "redis://u:topsecret@h?bogus=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseURL(tc.url)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	o, err := ParseURL("redis://h?read_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	d := withDefaults(o)
	if d.ReadTimeout != time.Second {
		t.Errorf("explicit read_timeout overridden: %v", d.ReadTimeout)
	}
	if d.DialTimeout != defaultDialTimeout || d.WriteTimeout != defaultWriteTimeout ||
		d.MaxRetries != -1 || d.DialerRetries != 1 || !d.ContextTimeoutEnabled {
		t.Errorf("defaults not applied: %+v", d)
	}
	if o.MaxRetries != 0 {
		t.Error("withDefaults modified its argument")
	}
}

func TestKeyspace(t *testing.T) {
	for _, tc := range []struct{ hub, prefix string }{
		{"prod", "hubgate:{prod}:"},
		{"my-hub.v2_x", "hubgate:{my-hub.v2_x}:"},
		{"a}b{c:d", "hubgate:{a%7Db%7Bc%3Ad}:"},
		{"50%", "hubgate:{50%25}:"},
		{"ü", "hubgate:{%C3%BC}:"},
	} {
		if got := newKeyspace(tc.hub).prefix; got != tc.prefix {
			t.Errorf("hub %q: prefix %q, want %q", tc.hub, got, tc.prefix)
		}
	}
	// Hubs whose names differ only in escaped characters stay apart.
	if newKeyspace("a:b").prefix == newKeyspace("a%3Ab").prefix {
		t.Error(`hubs "a:b" and "a%3Ab" share a prefix`)
	}
}
