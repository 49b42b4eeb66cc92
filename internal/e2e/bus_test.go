package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const ipBus = "127.0.0.21"

// TestTelemetryAcrossProtocols: telemetry that the official Node SDK sends
// over AMQP and over MQTT reaches a back-end MQTT service client (client id
// "$service:…", a policy token with ServiceConnect) on the hub's bus, with
// the message's properties in the topic's property bag.
func TestTelemetryAcrossProtocols(t *testing.T) {
	h := startHub(t, "hub-bus", ipBus)
	pem, err := os.ReadFile(h.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	got := make(chan string, 16)
	o := paho.NewClientOptions().AddBroker("ssl://" + h.addr(8883)).SetClientID("$service:e2e").
		SetUsername(h.Name + "/$service").
		SetPassword(sasPolicyToken(t, h.Name, keyFromConnString(t, h.ConnStr), "iothubowner")).
		SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: h.Name}).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m.Topic() })
	svc := paho.NewClient(o)
	if tok := svc.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("service client connect: %v", tok.Error())
	}
	defer svc.Disconnect(0)
	if tok := svc.Subscribe("devices/+/messages/events/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("service subscribe: %v", tok.Error())
	}
	for _, transport := range []string{"amqp", "mqtt"} {
		t.Run("ok/"+transport, func(t *testing.T) {
			id := "bus-" + transport
			wantSent(t, h.connect(t, transport, h.sasConnString(t, id), "--send", "1"), 1)
			select {
			case topic := <-got:
				if !strings.HasPrefix(topic, "devices/"+id+"/messages/events/") || !strings.Contains(topic, "%24.mid=") {
					t.Fatalf("service got topic %q, want devices/%s/messages/events/ with a message id in the bag", topic, id)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("the service client got no telemetry from the %s device", transport)
			}
		})
	}
}

// sasPolicyToken signs a hub-level policy token (sr = the host name) with
// the suite's own signer, as the service SDKs do (reference §7.1).
func sasPolicyToken(t *testing.T, host, key, policy string) string {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatalf("policy key: %v", err)
	}
	se := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(host + "\n" + se))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return "SharedAccessSignature sr=" + host + "&sig=" + sig + "&se=" + se + "&skn=" + policy
}
