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
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/fleetca/fleetca/internal/registry"
)

// maxPacketBytes bounds an MQTT packet; a CSR request is a few kilobytes.
const maxPacketBytes = 128 << 10

// readBufferBytes is each device's read buffer.
const readBufferBytes = 512

// connectTimeout bounds the TLS handshake and the CONNECT packet.
const connectTimeout = 10 * time.Second

// Options configure a Server.
type Options struct {
	// Addr is where the TLS listener binds.
	Addr string
	// Certificate is the endpoint's TLS certificate chain.
	Certificate tls.Certificate
	Registry    Registry
	Logger      *slog.Logger
	// SweepInterval is how often the certificates of connected devices are
	// all checked again, and records of sessions that ended unnoticed
	// forgotten. A change of status reaches the devices it concerns
	// through the change feed within ChangePoll, a replica that could not
	// read the feed for longer than it keeps changes checks every device
	// again, and a provisioning claim's connection is checked again when
	// the claim expires: the sweep is a last backstop, and as it reads the
	// registry once per device, a rare one, so that an idle fleet costs
	// next to nothing. Zero means an hour.
	SweepInterval time.Duration
	// ExpiryInterval is how often certificates whose ownership token expired
	// are deleted; zero means one minute.
	ExpiryInterval time.Duration
	// Now is the clock of the expiry janitor; nil means time.Now.
	Now func() time.Time
	// Observer, if set, sees every fleet-provisioning request.
	Observer Observer
	// MaxConnections bounds the open connections; at the bound the listener
	// stops accepting. Zero means 10,000.
	MaxConnections int
	// MaxPending bounds the connections not yet admitted (TLS handshake,
	// CONNECT, the registry's verdict), and MaxPendingPerSource those of one
	// source address, beyond which a new connection is closed at once. Zero
	// means 1,024 and 64.
	MaxPending, MaxPendingPerSource int
	// ProvisioningRate bounds each account's fleet-provisioning requests per
	// second, in bursts of ProvisioningBurst; more are rejected with 429
	// Throttled. Zero means 20 a second in bursts of 40.
	ProvisioningRate  float64
	ProvisioningBurst int
	// WriteTimeout bounds each write to a device; a device that does not
	// read for that long is disconnected. Zero means 10 s.
	WriteTimeout time.Duration
	// ChangePoll is how often the change feed is read for changes made by
	// other replicas (this process's own are read at once). Zero means 1 s.
	ChangePoll time.Duration
	// SkipPolicies turns IoT policy enforcement off: every connect,
	// publish, subscribe and delivery the topic rules allow is allowed.
	// For development only; New logs a warning.
	SkipPolicies bool
}

// Observer is told about every fleet-provisioning request once it is
// answered, and every connection's admission: outcome is admitted,
// refused (reason says why, from a fixed set), invalid_client_id or error.
type Observer interface {
	ObserveMQTTRequest(operation string, status int, elapsed time.Duration)
	ObserveAdmission(outcome, reason string)
}

// Server is the device plane.
type Server struct {
	opts     Options
	broker   *mqtt.Server
	hook     *hook
	listener net.Listener
	tls      *tlsListener
	stop     chan struct{}
	// ctx ends when Close begins, so that janitors waiting on the
	// database do not hold up shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	// sweepFailing is whether the last sweep pass had checks fail; only
	// the sweep goroutine touches it.
	sweepFailing bool
	wg           sync.WaitGroup
}

// New binds the listener and prepares the broker; Start serves. Admissions,
// fleet-provisioning requests and the janitors run on a context derived from
// ctx, which Close ends.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Hour
	}
	if opts.ExpiryInterval <= 0 {
		opts.ExpiryInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 10_000
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1024
	}
	if opts.MaxPendingPerSource <= 0 {
		opts.MaxPendingPerSource = 64
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.ChangePoll <= 0 {
		opts.ChangePoll = time.Second
	}
	if opts.ProvisioningRate <= 0 {
		opts.ProvisioningRate, opts.ProvisioningBurst = 20, 40
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacketBytes
	// Retained messages would outlive the sessions they are scoped to.
	caps.RetainAvailable = 0
	// AWS's limits (limits.go), which also bound each device's memory.
	caps.MaximumQos = 1
	caps.MaximumSessionExpiryInterval = uint32(sessionExpiry / time.Second)
	caps.MaximumInflight = maxInflight
	caps.ReceiveMaximum = receiveMaximum
	caps.MaximumClientWritesPending = maxWritesPending
	caps.TopicAliasMaximum = topicAliasMaximum
	caps.MaximumClients = int64(opts.MaxConnections)
	broker := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		// Each device's reader buffers this much; a device mostly sends
		// small packets (keep-alives, a publish now and then), and a large
		// one is read through the buffer. mochi's default is 2 KiB, which a
		// fleet of idle devices holds for nothing.
		ClientNetReadBufferSize: readBufferBytes,
		Logger:                  slog.New(newBrokerLog(opts.Logger.Handler())).With("component", "mqtt"),
	})
	ctx, cancel := context.WithCancel(ctx)
	h := &hook{ctx: ctx, reg: opts.Registry, log: opts.Logger, broker: broker, observer: opts.Observer,
		limiter: newAccountLimiter(opts.ProvisioningRate, opts.ProvisioningBurst), skipPolicies: opts.SkipPolicies}
	h.feed = newFollower(h, opts.Registry)
	if opts.SkipPolicies {
		opts.Logger.Warn("IoT POLICIES ARE NOT ENFORCED: every device may connect, publish, subscribe and receive as the topic rules allow, whatever its certificate's policies say (--insecure-skip-policies; for development only)")
	}
	if err := broker.AddHook(h, nil); err != nil {
		cancel()
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		cancel()
		return nil, err
	}
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{opts.Certificate},
		// Every device authenticates with a certificate; which ones are
		// trusted is the registry's decision, made on connect.
		ClientAuth: tls.RequireAnyClientCert,
		MinVersion: tls.VersionTLS12,
	}
	s := &Server{opts: opts, broker: broker, hook: h, listener: ln, stop: make(chan struct{}), ctx: ctx, cancel: cancel,
		tls: newTLSListener("mqtts", ln, tlsConfig, opts.Logger, opts.MaxConnections, opts.MaxPending, opts.MaxPendingPerSource, opts.WriteTimeout)}
	if err := broker.AddListener(s.tls); err != nil {
		ln.Close()
		cancel()
		return nil, err
	}
	return s, nil
}

// Connected reports how many devices are connected now.
func (s *Server) Connected() int { return int(atomic.LoadInt64(&s.broker.Info.ClientsConnected)) }

// Addr is the address the listener is bound to.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// acceptFailureGrace is how long accepts may fail before the endpoint counts
// as not ready: a moment of descriptor exhaustion is survived by backing off.
const acceptFailureGrace = 5 * time.Second

// Ready reports why the endpoint cannot take devices, or nil if it can.
func (s *Server) Ready() error {
	if s.tls.Stopped() {
		return errors.New("the MQTT listener has stopped")
	}
	if since := s.tls.FailingSince(); !since.IsZero() && time.Since(since) > acceptFailureGrace {
		return fmt.Errorf("the MQTT listener has failed to accept connections since %s", since.UTC().Format(time.RFC3339))
	}
	return nil
}

// Start serves devices and runs the janitors in the background.
func (s *Server) Start() error {
	if err := s.broker.Serve(); err != nil {
		return err
	}
	s.wg.Add(3)
	// A sweep pass checks every session, however long that takes: bounded
	// by the interval, it would stop at the same place every pass and never
	// check the devices after it.
	go s.every(s.opts.SweepInterval, 0, s.sweep)
	go s.every(s.opts.ExpiryInterval, s.opts.ExpiryInterval, s.expire)
	go s.follow()
	return nil
}

// follow reads the change feed on every tick, after each change this
// process makes, and when a session asks for its grants to be read again.
func (s *Server) follow() {
	defer s.wg.Done()
	f := s.hook.feed
	t := time.NewTicker(s.opts.ChangePoll)
	defer t.Stop()
	f.pass(s.ctx)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.opts.Registry.ChangeNotices():
		case <-f.wake:
		}
		f.pass(s.ctx)
	}
}

// Close disconnects every device and stops, giving up waiting for the
// janitors and the broker when ctx ends: their work is on the lifetime
// context, which Close ends first, so they return unless something hangs.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	close(s.stop)
	done := make(chan error, 1)
	go func() {
		s.wg.Wait()
		done <- s.broker.Close()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("mqtt: closing: %w", ctx.Err())
	}
}

// every runs f every d until Close, each run under the server's lifetime
// context, bounded by timeout when it is not zero. A run that takes longer
// than d delays the next (the ticker drops ticks), never cuts itself short.
func (s *Server) every(d, timeout time.Duration, f func(context.Context)) {
	defer s.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := s.ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeout(s.ctx, timeout)
			}
			f(ctx)
			cancel()
		}
	}
}

// sweepItemTimeout bounds the check of one device, so that one slow answer
// does not end the pass.
const sweepItemTimeout = time.Second

// sweep disconnects devices that would no longer be admitted: their
// certificate is no longer ACTIVE (updated, revoked or deleted), or their CA
// was deactivated or deleted, on this replica or another. A failed check
// does not end the pass, so no device is skipped pass after pass; failures
// are logged when they start and when they stop. It also forgets records
// that outlived their sessions (hook.dead).
func (s *Server) sweep(ctx context.Context) {
	var pass registry.SweepPass
	failures := 0
	s.hook.sessions.Range(func(k, v any) bool {
		if ctx.Err() != nil {
			return false
		}
		cl, sess := k.(*mqtt.Client), v.(*session)
		if s.hook.dead(cl) {
			s.hook.forget(cl)
			return true
		}
		itemCtx, cancel := context.WithTimeout(ctx, sweepItemTimeout)
		admitted, err := s.opts.Registry.StillAdmitted(itemCtx, &pass, sess.scope, sess.certificateID)
		cancel()
		if err != nil {
			failures++
			return true
		}
		if !admitted {
			s.hook.evict(cl, sess)
		}
		return true
	})
	switch {
	case failures > 0 && !s.sweepFailing:
		s.opts.Logger.Warn("checking connected devices fails; devices whose certificate changes stay connected until it works", "devices", failures)
	case failures == 0 && s.sweepFailing:
		s.opts.Logger.Info("checking connected devices works again")
	}
	s.sweepFailing = failures > 0
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
	if err := s.opts.Registry.PruneChanges(ctx); err != nil {
		s.opts.Logger.Warn("pruning the change feed", "err", err)
	}
}
