package mqttapi

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// waitLimit bounds every wait in these tests; it guards against deadlocks
// and is no performance expectation.
const waitLimit = 5 * time.Second

// fakeRegistry is a Registry whose answers each test sets. A method whose
// answer is nil calls the embedded nil Registry and panics, so that a call
// the test did not expect fails it loudly. Every call is recorded first.
type fakeRegistry struct {
	Registry

	admit         func(ctx context.Context, leaf *x509.Certificate, serverName string) (registry.Admission, error)
	stillAdmitted func(ctx context.Context, pass *registry.SweepPass, scope iot.Scope, certificateID string) (bool, error)
	createKeys    func(ctx context.Context, scope iot.Scope) (*registry.ProvisionedCertificate, error)
	createFromCSR func(ctx context.Context, scope iot.Scope, in registry.DeviceCSR) (*registry.ProvisionedCertificate, error)
	expire        func(ctx context.Context, now time.Time) ([]iot.Certificate, error)
	// grants answers ConnectionGrants; nil grants everything (allowAll).
	grants func(ctx context.Context, scope iot.Scope, certificateID, clientID string) (*registry.Grants, error)

	mu sync.Mutex
	// feed is the change feed Changes reads; notices is ChangeNotices.
	feed       []registry.Change
	notices    chan struct{}
	grantCalls int
	// given is the highest change number given, when above the feed's
	// (numbers of transactions not yet committed).
	given int64
	// policies answers CompiledPolicy; policyReads counts its calls.
	policies    map[string]*policy.Policy
	policyReads int
	admitCalls  []admitCall
	stillCalls  []stillCall
	keysCalls   []iot.Scope
	csrCalls    []csrCall
	expireCalls []time.Time
}

type admitCall struct {
	leaf        *x509.Certificate
	serverName  string
	hasDeadline bool
}

type stillCall struct {
	pass          *registry.SweepPass
	scope         iot.Scope
	certificateID string
}

type csrCall struct {
	scope iot.Scope
	in    registry.DeviceCSR
}

func (f *fakeRegistry) AdmitDevice(ctx context.Context, leaf *x509.Certificate, serverName string) (registry.Admission, error) {
	_, ok := ctx.Deadline()
	f.mu.Lock()
	f.admitCalls = append(f.admitCalls, admitCall{leaf, serverName, ok})
	f.mu.Unlock()
	if f.admit == nil {
		return f.Registry.AdmitDevice(ctx, leaf, serverName)
	}
	return f.admit(ctx, leaf, serverName)
}

func (f *fakeRegistry) StillAdmitted(ctx context.Context, pass *registry.SweepPass, scope iot.Scope, certificateID string) (bool, error) {
	f.mu.Lock()
	f.stillCalls = append(f.stillCalls, stillCall{pass, scope, certificateID})
	f.mu.Unlock()
	if f.stillAdmitted == nil {
		return f.Registry.StillAdmitted(ctx, pass, scope, certificateID)
	}
	return f.stillAdmitted(ctx, pass, scope, certificateID)
}

func (f *fakeRegistry) CreateDeviceKeysAndCertificate(ctx context.Context, scope iot.Scope) (*registry.ProvisionedCertificate, error) {
	f.mu.Lock()
	f.keysCalls = append(f.keysCalls, scope)
	f.mu.Unlock()
	if f.createKeys == nil {
		return f.Registry.CreateDeviceKeysAndCertificate(ctx, scope)
	}
	return f.createKeys(ctx, scope)
}

func (f *fakeRegistry) CreateDeviceCertificateFromCSR(ctx context.Context, scope iot.Scope, in registry.DeviceCSR) (*registry.ProvisionedCertificate, error) {
	f.mu.Lock()
	f.csrCalls = append(f.csrCalls, csrCall{scope, in})
	f.mu.Unlock()
	if f.createFromCSR == nil {
		return f.Registry.CreateDeviceCertificateFromCSR(ctx, scope, in)
	}
	return f.createFromCSR(ctx, scope, in)
}

func (f *fakeRegistry) ExpireProvisioningTokens(ctx context.Context, now time.Time) ([]iot.Certificate, error) {
	f.mu.Lock()
	f.expireCalls = append(f.expireCalls, now)
	f.mu.Unlock()
	if f.expire == nil {
		return f.Registry.ExpireProvisioningTokens(ctx, now)
	}
	return f.expire(ctx, now)
}

func (f *fakeRegistry) ConnectionGrants(ctx context.Context, scope iot.Scope, certificateID, clientID string) (*registry.Grants, error) {
	f.mu.Lock()
	f.grantCalls++
	grants := f.grants
	f.mu.Unlock()
	if grants == nil {
		return &registry.Grants{Policies: []*policy.Policy{allowAll}, PolicyNames: []string{"all"}}, nil
	}
	return grants(ctx, scope, certificateID, clientID)
}

// allowAll is the policy the fake grants unless a test says otherwise.
var allowAll = func() *policy.Policy {
	p, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}`))
	if err != nil {
		panic(err)
	}
	return p
}()

// change appends a change to the fake's feed and tells the follower.
func (f *fakeRegistry) change(c registry.Change) {
	f.ChangeNotices()
	f.mu.Lock()
	c.Seq = int64(len(f.feed) + 1)
	f.feed = append(f.feed, c)
	notices := f.notices
	f.mu.Unlock()
	select {
	case notices <- struct{}{}:
	default:
	}
}

func (f *fakeRegistry) Changes(ctx context.Context, after int64, limit int) ([]registry.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []registry.Change
	for _, c := range f.feed {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeRegistry) LastChange(ctx context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	given := f.given
	for _, c := range f.feed {
		given = max(given, c.Seq)
	}
	return given, nil
}

// CompiledPolicy answers from policies, by name; nil for a name it lacks.
func (f *fakeRegistry) CompiledPolicy(ctx context.Context, scope iot.Scope, name string) (*policy.Policy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policyReads++
	return f.policies[name], nil
}

func (f *fakeRegistry) PruneChanges(ctx context.Context) error { return nil }

func (f *fakeRegistry) ChangeNotices() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notices == nil {
		f.notices = make(chan struct{}, 1)
	}
	return f.notices
}

// calls returns a copy of the recorded calls of one method, read under the
// fake's lock because the broker calls it from its own goroutines.
func calls[T any](f *fakeRegistry, field *[]T) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]T(nil), *field...)
}

// admitByName admits a device by its certificate's common name: a name in
// scopes is admitted in that scope with its certificate's real ID, any
// other is refused.
func admitByName(scopes map[string]iot.Scope) func(context.Context, *x509.Certificate, string) (registry.Admission, error) {
	return func(_ context.Context, leaf *x509.Certificate, _ string) (registry.Admission, error) {
		scope, ok := scopes[leaf.Subject.CommonName]
		if !ok {
			return registry.Admission{Refusal: "the certificate is not registered"}, nil
		}
		return registry.Admission{Certificate: &iot.Certificate{
			Scope: scope, ID: iot.CertificateID(leaf.Raw), Status: iot.StatusActive,
		}}, nil
	}
}

// testPKI is a CA, the endpoint's certificate and a way to make device
// certificates, made once for the package: the server does not check the
// chain (the registry does), but the devices check the server's.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	roots  *x509.CertPool
	server tls.Certificate
}

var thePKI = sync.OnceValues(func() (*testPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqttapi test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &testPKI{ca: ca, caKey: caKey, roots: x509.NewCertPool()}
	p.roots.AddCert(ca)
	p.server, err = p.issue("localhost", x509.ExtKeyUsageServerAuth, "localhost", "*.localhost")
	return p, err
})

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p, err := thePKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serials numbers the certificates issued; 1 is the CA's.
var serials atomic.Int64

func (p *testPKI) issue(cn string, usage x509.ExtKeyUsage, dnsNames ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1) + 1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dnsNames,
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// device makes a device certificate with the common name cn.
func (p *testPKI) device(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	c, err := p.issue(cn, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// certificateID is the ID fleetca gives c.
func certificateID(c tls.Certificate) string { return iot.CertificateID(c.Certificate[0]) }

// logRecorder is a slog handler that keeps what is logged, so that tests can
// check what reaches the log (and what does not).
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return nil
}

// find returns the records with the message msg.
func (l *logRecorder) find(msg string) []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logRecord
	for _, r := range l.records {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// all is everything logged, one record a line, for failure messages and for
// checking that a secret never reached the log.
func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.records {
		fmt.Fprintf(&b, "%s %s %v\n", r.level, r.msg, r.attrs)
	}
	return b.String()
}

// observation is one ObserveMQTTRequest call.
type observation struct {
	operation string
	status    int
}

type observer struct {
	mu         sync.Mutex
	seen       []observation
	admissions []string
}

func (o *observer) ObserveMQTTRequest(operation string, status int, _ time.Duration) {
	o.mu.Lock()
	o.seen = append(o.seen, observation{operation, status})
	o.mu.Unlock()
}

func (o *observer) ObserveAdmission(outcome, reason string) {
	o.mu.Lock()
	o.admissions = append(o.admissions, outcome+" "+reason)
	o.mu.Unlock()
}

func (o *observer) observed() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.seen...)
}

// newTestServer makes a Server on 127.0.0.1:0 with the test PKI's
// certificate and a recording logger, without starting it: tests that call
// the hook directly need its broker and hook only.
func newTestServer(t testing.TB, opts Options) (*Server, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	opts.Addr = "127.0.0.1:0"
	opts.Certificate = newPKI(t).server
	opts.Logger = slog.New(logs)
	// Janitors that would call the fake unasked stay out of the way unless
	// the test wants them.
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Hour
	}
	if opts.ExpiryInterval == 0 {
		opts.ExpiryInterval = time.Hour
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("closing the server: %v", err)
		}
	})
	return s, logs
}

// pipeDevice is a device connected to a Server's hook over TLS on an
// in-memory pipe, without the listener or mochi's read loop: the test
// drives the hook's connect steps itself and sends packets through
// OnPacketRead and the broker as the read loop would, while everything the
// broker writes to the device is decoded into packets.
type pipeDevice struct {
	s        *Server
	cl       *mqtt.Client
	received chan packets.Packet
	nextID   uint16
	// barrier is the topic quiet waits for; next skips the barriers of
	// other devices, which reach a device subscribed to "#".
	barrier string
}

// connectPipe connects a device presenting cert and asking for the TLS
// server name sni, as mochi's attachClient would: OnConnect (the fake's
// verdict), OnConnectAuthenticate, then the session. It returns OnConnect's
// error, and the device only if it was admitted.
func connectPipe(t testing.TB, s *Server, clientID string, cert tls.Certificate, sni string) (*pipeDevice, error) {
	t.Helper()
	return connectPipeWith(t, s, clientID, cert, sni, nil)
}

// connectPipeWith is connectPipe with a chance to change the CONNECT packet
// (its will, its keep-alive).
func connectPipeWith(t testing.TB, s *Server, clientID string, cert tls.Certificate, sni string, configure func(*packets.Packet)) (*pipeDevice, error) {
	t.Helper()
	p := newPKI(t)
	serverEnd, deviceEnd := net.Pipe()
	srv := tls.Server(serverEnd, &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	dev := tls.Client(deviceEnd, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p.roots, ServerName: sni})
	t.Cleanup(func() { srv.Close(); dev.Close() })
	d := &pipeDevice{s: s, received: make(chan packets.Packet, 64)}
	handshake := make(chan error, 1)
	// The device side reads from its first byte on, so that the pipe, which
	// has no buffer, never blocks what the server writes.
	go func() {
		err := dev.Handshake()
		handshake <- err
		if err != nil {
			return
		}
		r := bufio.NewReader(dev)
		for {
			pk, err := readPacket(r)
			if err != nil {
				close(d.received)
				return
			}
			d.received <- pk
		}
	}()
	if err := srv.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	if err := <-handshake; err != nil {
		t.Fatalf("device TLS handshake: %v", err)
	}
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Clean: true, Keepalive: 60}}
	if configure != nil {
		configure(&connect)
	}
	cl := s.broker.NewClient(srv, "pipe", "", false)
	cl.ParseConnect("pipe", connect)
	d.cl = cl
	if err := s.hook.OnConnect(cl, connect); err != nil {
		return nil, err
	}
	if !s.hook.OnConnectAuthenticate(cl, connect) {
		t.Fatal("OnConnect admitted a device that OnConnectAuthenticate refuses")
	}
	// As mochi's attachClient: the hook sees a session it takes over
	// before the client replaces it.
	s.hook.OnSessionEstablish(cl, connect)
	s.broker.Clients.Add(cl)
	go cl.WriteLoop()
	s.hook.OnSessionEstablished(cl, connect)
	t.Cleanup(func() { cl.Stop(nil) })
	return d, nil
}

// readPacket decodes one packet the broker wrote to a device.
func readPacket(r *bufio.Reader) (packets.Packet, error) {
	pk := packets.Packet{ProtocolVersion: 4}
	b, err := r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return pk, err
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		err = pk.PublishDecode(buf)
	case packets.Suback:
		err = pk.SubackDecode(buf)
	case packets.Unsuback:
		err = pk.UnsubackDecode(buf)
	case packets.Puback:
		err = pk.PubackDecode(buf)
	case packets.Disconnect:
		err = pk.DisconnectDecode(buf)
	}
	return pk, err
}

// send hands the broker a packet as mochi's read loop does: through
// OnPacketRead first. An error from OnPacketRead is returned; the read loop
// would close the connection on it.
func (d *pipeDevice) send(pk packets.Packet) error {
	pk.ProtocolVersion = d.cl.Properties.ProtocolVersion
	pk, err := d.s.hook.OnPacketRead(d.cl, pk)
	if err != nil {
		return err
	}
	return d.s.broker.InjectPacket(d.cl, pk)
}

// subscribe subscribes at QoS 1 and returns the SUBACK's codes.
func (d *pipeDevice) subscribe(t testing.TB, filters ...string) []byte {
	t.Helper()
	d.nextID++
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: d.nextID}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	if err := d.send(pk); err != nil {
		t.Fatalf("subscribe %q: %v", filters, err)
	}
	ack := d.next(t)
	if ack.FixedHeader.Type != packets.Suback || ack.PacketID != d.nextID {
		t.Fatalf("subscribe %q: got %s id %d (topic %q, payload %.80q), want the SUBACK", filters, packetName(ack), ack.PacketID, ack.TopicName, ack.Payload)
	}
	return ack.ReasonCodes
}

// publish publishes at QoS 0, so that no PUBACK follows what it causes.
func (d *pipeDevice) publish(topic string, payload []byte) error {
	return d.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload})
}

// next is the next packet written to the device.
func (d *pipeDevice) next(t testing.TB) packets.Packet {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case pk, ok := <-d.received:
			if !ok {
				t.Fatal("the connection closed")
			}
			if pk.FixedHeader.Type == packets.Publish && strings.HasPrefix(pk.TopicName, "barrier/") && pk.TopicName != d.barrier {
				continue
			}
			return pk
		case <-deadline:
			t.Fatal("nothing written to the device")
		}
	}
}

var barriers struct {
	sync.Mutex
	n int
}

// quiet checks that nothing was delivered to the device so far: it publishes
// to a topic of its own and expects that message first. Deliveries to one
// device are written in order, so whatever was routed to it before would
// come before.
func (d *pipeDevice) quiet(t testing.TB) {
	t.Helper()
	barriers.Lock()
	barriers.n++
	topic := fmt.Sprintf("barrier/%d", barriers.n)
	barriers.Unlock()
	d.barrier = topic
	if codes := d.subscribe(t, topic); codes[0] != 1 {
		t.Fatalf("subscribing to %s: code %#x", topic, codes[0])
	}
	if err := d.publish(topic, nil); err != nil {
		t.Fatal(err)
	}
	pk := d.next(t)
	if pk.FixedHeader.Type != packets.Publish || pk.TopicName != topic {
		t.Fatalf("the device was sent %s %q %q, want nothing before %s", packetName(pk), pk.TopicName, pk.Payload, topic)
	}
}

func packetName(pk packets.Packet) string {
	if name, ok := packets.PacketNames[pk.FixedHeader.Type]; ok {
		return name
	}
	return fmt.Sprintf("type %d", pk.FixedHeader.Type)
}

// closed waits for the device's connection to end, skipping what was
// written to it before; it returns whether a DISCONNECT came first.
func (d *pipeDevice) closed(t testing.TB) (disconnect *packets.Packet) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case pk, ok := <-d.received:
			if !ok {
				return disconnect
			}
			if pk.FixedHeader.Type == packets.Disconnect {
				disconnect = &pk
			}
		case <-deadline:
			t.Fatal("the connection is still open")
			return nil
		}
	}
}
