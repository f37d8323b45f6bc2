// Package mqttapi is fleetca's device plane: an MQTT 3.1.1 and 5 broker
// (mochi-mqtt) behind mutual TLS that admits only devices whose certificate is
// registered and ACTIVE, registers certificates of auto-registering CAs just
// in time, serves the fleet-provisioning certificate topics, and keeps every
// account's topics and sessions apart. It is the one place where errors
// become MQTT replies.
package mqttapi

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetca/fleetca/internal/registry"
)

// maxPacketBytes bounds an MQTT packet; a CSR request is a few kilobytes.
const maxPacketBytes = 128 << 10

// connectTimeout bounds the TLS handshake and the CONNECT packet.
const connectTimeout = 10 * time.Second

// Options configure a Server.
type Options struct {
	// Addr is where the TLS listener binds.
	Addr string
	// Certificate is the endpoint's TLS certificate chain.
	Certificate tls.Certificate
	Registry    *registry.Service
	Logger      *slog.Logger
	// SweepInterval is how often the certificates of connected devices are
	// checked, so that a device whose certificate stops being ACTIVE is
	// disconnected; zero means 2 s.
	SweepInterval time.Duration
	// ExpiryInterval is how often certificates whose ownership token expired
	// are deleted; zero means one minute.
	ExpiryInterval time.Duration
	// Now is the clock of the expiry janitor; nil means time.Now.
	Now func() time.Time
	// Observer, if set, sees every fleet-provisioning request.
	Observer Observer
}

// Observer is told about every fleet-provisioning request once it is answered.
type Observer interface {
	ObserveMQTTRequest(operation string, status int, elapsed time.Duration)
}

// Server is the device plane.
type Server struct {
	opts     Options
	broker   *mqtt.Server
	hook     *hook
	listener net.Listener
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New binds the listener and prepares the broker; Start serves.
func New(opts Options) (*Server, error) {
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 2 * time.Second
	}
	if opts.ExpiryInterval <= 0 {
		opts.ExpiryInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacketBytes
	// Retained messages would outlive the sessions they are scoped to.
	caps.RetainAvailable = 0
	broker := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger:       opts.Logger.With("component", "mqtt"),
	})
	h := &hook{reg: opts.Registry, log: opts.Logger, broker: broker, observer: opts.Observer}
	if err := broker.AddHook(h, nil); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{opts.Certificate},
		// Every device authenticates with a certificate; which ones are
		// trusted is the registry's decision, made on connect.
		ClientAuth: tls.RequireAnyClientCert,
		MinVersion: tls.VersionTLS12,
	}
	s := &Server{opts: opts, broker: broker, hook: h, listener: ln, stop: make(chan struct{})}
	if err := broker.AddListener(&tlsListener{id: "mqtts", ln: tls.NewListener(ln, tlsConfig)}); err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Start serves devices and runs the janitors in the background.
func (s *Server) Start() error {
	if err := s.broker.Serve(); err != nil {
		return err
	}
	s.wg.Add(2)
	go s.every(s.opts.SweepInterval, s.sweep)
	go s.every(s.opts.ExpiryInterval, s.expire)
	return nil
}

// Close disconnects every device and stops.
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	return s.broker.Close()
}

func (s *Server) every(d time.Duration, f func(context.Context)) {
	defer s.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), d)
			f(ctx)
			cancel()
		}
	}
}

// sweep disconnects devices whose certificate is no longer ACTIVE (updated,
// revoked or deleted, on this replica or another).
func (s *Server) sweep(ctx context.Context) {
	s.hook.sessions.Range(func(k, v any) bool {
		cl, sess := k.(*mqtt.Client), v.(*session)
		active, err := s.opts.Registry.CertificateActive(ctx, sess.scope, sess.certificateID)
		if err != nil {
			s.opts.Logger.Warn("checking a connected device", "err", err)
			return false
		}
		if !active {
			s.opts.Logger.Info("mqtt disconnect: certificate no longer ACTIVE", "account", sess.scope.AccountID, "certificate_id", sess.certificateID, "client_id", sess.clientID)
			s.broker.DisconnectClient(cl, packets.ErrNotAuthorized)
			cl.Stop(errors.New("certificate no longer ACTIVE"))
		}
		return true
	})
}

// ExpireNow deletes the certificates whose ownership token expired before at.
func (s *Server) ExpireNow(ctx context.Context, at time.Time) (int, error) {
	deleted, err := s.opts.Registry.ExpireProvisioningTokens(ctx, at)
	for _, c := range deleted {
		s.opts.Logger.Info("deleted a provisioned certificate that was not activated within its ownership token's lifetime",
			"account", c.Scope.AccountID, "certificate_id", c.ID)
	}
	return len(deleted), err
}

func (s *Server) expire(ctx context.Context) {
	if _, err := s.ExpireNow(ctx, s.opts.Now()); err != nil {
		s.opts.Logger.Warn("expiring ownership tokens", "err", err)
	}
}

// tlsListener serves mochi from a listener bound beforehand, so a port that
// is taken fails fleetca's start rather than a goroutine later.
type tlsListener struct {
	id  string
	ln  net.Listener
	end sync.Once
}

func (l *tlsListener) Init(*slog.Logger) error { return nil }
func (l *tlsListener) ID() string              { return l.id }
func (l *tlsListener) Address() string         { return l.ln.Addr().String() }
func (l *tlsListener) Protocol() string        { return "mqtts" }

func (l *tlsListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		// The TLS handshake and CONNECT must come soon; after CONNECT the
		// broker sets deadlines from the keep-alive.
		conn.SetDeadline(time.Now().Add(connectTimeout))
		go establish(l.id, conn)
	}
}

func (l *tlsListener) Close(closeClients listeners.CloseFn) {
	l.end.Do(func() {
		closeClients(l.id)
		l.ln.Close()
	})
}
