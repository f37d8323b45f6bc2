package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connectTimeout bounds a device's handshake, CONNECT and CONNACK.
const connectTimeout = 30 * time.Second

// mqttConn is a device's MQTT 3.1.1 connection driven packet by packet
// with paho's codec but without paho's client: the client's goroutines,
// stores and timers cost the load generator about 0.7 ms of CPU a connect
// on the cores it shares with the server, three times its crypto.
type mqttConn struct{ *tls.Conn }

// connectMQTT makes a TLS connection to addr with cfg and sends CONNECT
// (clean session, keepalive); it fails unless the CONNACK accepts.
func connectMQTT(ctx context.Context, addr string, cfg *tls.Config, clientID string, keepalive time.Duration) (*mqttConn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	c := &mqttConn{nc.(*tls.Conn)}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.CleanSession, cp.ClientIdentifier, cp.Keepalive = true, clientID, uint16(keepalive/time.Second)
	if err := cp.Write(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	pk, err := packets.ReadPacket(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if ack, ok := pk.(*packets.ConnackPacket); !ok || ack.ReturnCode != packets.Accepted {
		c.Close()
		return nil, fmt.Errorf("connect: refused: %v", pk)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// disconnect sends DISCONNECT and closes the connection.
func (c *mqttConn) disconnect() {
	packets.NewControlPacket(packets.Disconnect).Write(c)
	c.Close()
}

// keepAlive sends a PINGREQ every interval and reads what the server sends
// until ctx ends, then disconnects; it reports whether the connection was
// lost before that.
func (c *mqttConn) keepAlive(ctx context.Context, interval time.Duration) (lost bool) {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			if _, err := packets.ReadPacket(c); err != nil {
				c.Close()
				return
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.disconnect()
			<-closed
			return false
		case <-closed:
			return ctx.Err() == nil
		case <-t.C:
			c.SetWriteDeadline(time.Now().Add(connectTimeout))
			if err := packets.NewControlPacket(packets.Pingreq).Write(c); err != nil {
				c.Close()
				<-closed
				return ctx.Err() == nil
			}
		}
	}
}
