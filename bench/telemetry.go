package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TelemetryConfig is the telemetry workload: every device sends Messages
// messages of Size bytes to devices/{id}/messages/events/ at QoS.
type TelemetryConfig struct {
	Messages int
	Size     int
	QoS      byte
	Window   int // QoS 1 messages in flight per device; default 16
}

// Telemetry connects every device (unmeasured), then has all of them publish
// at once while the server's CPU is metered. The figure of record is
// messages per second of server CPU (messages per core).
func Telemetry(ctx context.Context, t Target, cfg Config, tc TelemetryConfig) (Result, error) {
	if tc.Window <= 0 {
		tc.Window = 16
	}
	if tc.Messages <= 0 {
		tc.Messages = 1
	}
	if cfg.External != nil {
		return Result{}, errors.New("bench: telemetry runs in one client process")
	}
	if t.Dialer.Probe {
		return Result{}, errors.New("bench: telemetry has no bare-TLS baseline (it speaks no MQTT)")
	}
	p, err := cfg.run(ctx, t, "connect")
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	settle(t.PID)
	payload := make([]byte, tc.Size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	rec := NewRecorder(len(cfg.Devices) * tc.Messages)
	stop := make(chan struct{})
	var pw sync.WaitGroup
	if cfg.Progress != nil {
		pw.Go(func() { progress(cfg.Progress, t.Name+" telemetry", len(cfg.Devices)*tc.Messages, rec, stop) })
	}
	m := startMeter(t.PID, nil)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range p.Conns {
		nc, ok := c.(net.Conn)
		if !ok {
			continue
		}
		topic := "devices/" + cfg.Devices[i].ID + "/messages/events/"
		wg.Go(func() {
			if err := publishAll(ctx, nc, topic, payload, tc, rec); err != nil {
				rec.Record(time.Now(), err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	server, client, _ := m.stop()
	close(stop)
	pw.Wait()
	res := summarize(t, cfg, &Phase{Conns: p.Conns, Rec: rec}, server, client, elapsed)
	res.Connected = p.Connected()
	res.ConnectsPerSec = 0
	res.ServerCPUUsPerConnect = 0
	ok, _ := rec.Counts()
	res.Messages = ok
	res.MessagesPerSec = round3(float64(ok) / elapsed.Seconds())
	if server > 0 && t.PID > 0 {
		res.MessagesPerCoreS = round3(float64(ok) / server.Seconds())
		res.ServerCPUUsPerMsg = round3(float64(server.Microseconds()) / float64(ok))
	}
	return res, nil
}

// publishAll sends tc.Messages PUBLISH packets on c; at QoS 1 it keeps up to
// Window unacknowledged and records each message's latency at its PUBACK.
func publishAll(ctx context.Context, c net.Conn, topic string, payload []byte, tc TelemetryConfig, rec *Recorder) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	w := bufio.NewWriterSize(c, 4096)
	if tc.QoS == 0 {
		for i := range tc.Messages {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			began := time.Now()
			if _, err := w.Write(encodePublish(nil, topic, payload, 0, uint16(i+1))); err != nil {
				return err
			}
			rec.Record(began, nil)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		// A PINGREQ round trip proves the server has read everything before it.
		if _, err := c.Write([]byte{0xC0, 0x00}); err != nil {
			return err
		}
		var b [2]byte
		_, err := io.ReadFull(c, b[:])
		return err
	}
	sentAt := make([]atomic.Int64, 1<<16) // unix ns by packet id; writer and reader goroutines
	slots := make(chan struct{}, tc.Window)
	acks := make(chan error, 1)
	go func() { // reader: PUBACKs
		r := bufio.NewReaderSize(c, 1024)
		var b [4]byte
		for n := 0; n < tc.Messages; n++ {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				acks <- err
				return
			}
			if b[0]>>4 != 4 {
				acks <- fmt.Errorf("expected PUBACK, got packet type %d", b[0]>>4)
				return
			}
			id := uint16(b[2])<<8 | uint16(b[3])
			rec.Record(time.Unix(0, sentAt[id].Load()), nil)
			<-slots
		}
		acks <- nil
	}()
	var buf []byte
	for i := range tc.Messages {
		id := uint16(i%65535 + 1)
		select {
		case slots <- struct{}{}:
		case err := <-acks:
			if err == nil {
				err = errors.New("acks ended early")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		sentAt[id].Store(time.Now().UnixNano())
		buf = encodePublish(buf[:0], topic, payload, 1, id)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if len(slots) == cap(slots) || i == tc.Messages-1 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return <-acks
}

// encodePublish appends an MQTT 3.1.1 PUBLISH to b.
func encodePublish(b []byte, topic string, payload []byte, qos byte, id uint16) []byte {
	rem := 2 + len(topic) + len(payload)
	if qos > 0 {
		rem += 2
	}
	b = append(b, 0x30|qos<<1)
	for {
		d := byte(rem % 128)
		rem /= 128
		if rem > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if rem == 0 {
			break
		}
	}
	b = append(b, byte(len(topic)>>8), byte(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = append(b, byte(id>>8), byte(id))
	}
	return append(b, payload...)
}
