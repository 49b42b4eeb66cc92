package amqp_test

import (
	"context"
	"crypto/tls"
	"io"
	"runtime"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/hubgate/hubgate/broker/amqp"
	"github.com/hubgate/hubgate/broker/amqp/wire"
)

// BenchmarkTelemetry: one go-amqp connection over TLS loopback sends 1 KiB
// telemetry messages (unsettled, each waiting for its disposition) through
// the head onto the bus, where a subscriber counts them.
func BenchmarkTelemetry(b *testing.B) {
	h := startHub(b, 0, amqp.Config{})
	d := h.createSAS(b, "bench1")
	got := make(chan struct{}, 1<<16)
	cancel, err := h.mqtt.Subscribe("devices/bench1/messages/events/#", func(string, []byte) { got <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	c, err := h.dialTLS(b, nil, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("bench1@sas.hub", deviceToken("bench1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour))})
	if err != nil {
		b.Fatal(err)
	}
	snd, err := mustSession(b, c).NewSender(context.Background(), eventsAddr("bench1"), nil)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1024)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ResetTimer()
	for b.Loop() {
		if err := snd.Send(ctx, goamqp.NewMessage(payload), nil); err != nil {
			b.Fatal(err)
		}
		<-got
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkIdleConnections opens 2,000 AMQP/TLS connections (header and
// open only, as an idle Node device after connect) and reports the heap and
// stack growth per connection. Client and server live in this process, so
// the figure includes the client's TLS state: an upper bound for the hub.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 2000
	for b.Loop() {
		h := startHub(b, 0, amqp.Config{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]*tls.Conn, 0, n)
		hdr := wire.NewHeader(wire.ProtoAMQP)
		open, _ := wire.AppendFrame(hdr[:], wire.FrameAMQP, 0, &wire.Open{ContainerID: "idle", MaxFrameSize: 65536, ChannelMax: 0}, nil)
		for range n {
			nc, err := tls.Dial("tcp", h.tlsAddr, &tls.Config{RootCAs: h.roots, ServerName: hubName})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := nc.Write(open); err != nil {
				b.Fatal(err)
			}
			var rh [8]byte
			if _, err := io.ReadFull(nc, rh[:]); err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := wire.ReadFrame(nc, nil, 1<<16); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, nc)
		}
		for h.head.Connected() < n {
			runtime.Gosched()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64((after.HeapInuse+after.StackInuse)-(before.HeapInuse+before.StackInuse)) / n
		b.ReportMetric(per, "bytes/conn")
		for _, c := range conns {
			c.Close()
		}
	}
}
