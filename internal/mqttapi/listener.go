package mqttapi

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/fleetca/fleetca/internal/netlimit"
)

// Accept-loop backoff after a failed accept (out of file descriptors, most
// often), as net/http's: from 5 ms doubling to 1 s.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// tlsListener serves mochi from a listener bound beforehand, so that a port
// that is taken fails fleetca's start rather than a goroutine later. It
// bounds the connections it holds (total, and not yet admitted, in all and
// per source address), survives failed accepts, and gives each connection a
// deadline for its TLS handshake and CONNECT.
type tlsListener struct {
	id     string
	ln     net.Listener
	config *tls.Config
	log    *slog.Logger
	// slots holds a token per open connection; pending a token per
	// connection not yet admitted.
	slots, pending chan struct{}
	// perSource bounds the connections of one address not yet admitted.
	perSource *netlimit.PerSource
	mu        sync.Mutex
	// open holds every connection accepted and not closed, so that Close
	// ends those the broker does not know yet (in the TLS handshake, or
	// waiting for the registry's verdict).
	open   map[*trackedConn]struct{}
	end    sync.Once
	closed atomic.Bool
	done   chan struct{} // closed by Close: Serve stops waiting for room
	// failing is when accepts started failing, in Unix nanoseconds; 0 while
	// they succeed.
	failing atomic.Int64
	// stopped is set when Serve returned for another reason than Close.
	stopped atomic.Bool
	// writeTimeout bounds each write to a device.
	writeTimeout time.Duration
	// closing is, once Close began, the deadline of every write (Unix
	// nanoseconds): the broker writes a DISCONNECT to each device in turn,
	// and devices that stopped reading must not hold shutdown up for a
	// write timeout each.
	closing atomic.Int64
}

// closingWrites is how long the DISCONNECTs of a shutdown have, together.
const closingWrites = time.Second

func newTLSListener(id string, ln net.Listener, config *tls.Config, log *slog.Logger, maxConns, maxPending, maxPerSource int, writeTimeout time.Duration) *tlsListener {
	return &tlsListener{
		id: id, ln: ln, config: config, log: log, writeTimeout: writeTimeout,
		slots: make(chan struct{}, maxConns), pending: make(chan struct{}, maxPending), done: make(chan struct{}),
		perSource: netlimit.NewPerSource(maxPerSource), open: map[*trackedConn]struct{}{},
	}
}

func (l *tlsListener) Init(*slog.Logger) error { return nil }
func (l *tlsListener) ID() string              { return l.id }
func (l *tlsListener) Address() string         { return l.ln.Addr().String() }
func (l *tlsListener) Protocol() string        { return "mqtts" }

// Serve accepts while there is room: with every slot taken it stops
// accepting, and connections wait in the kernel's backlog rather than take
// file descriptors the server needs.
func (l *tlsListener) Serve(establish listeners.EstablishFn) {
	defer func() {
		if !l.closed.Load() {
			l.stopped.Store(true)
		}
	}()
	backoff := time.Duration(0)
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return
		}
		select {
		case l.pending <- struct{}{}:
		case <-l.done:
			<-l.slots
			return
		}
		conn, err := l.ln.Accept()
		if err != nil {
			<-l.pending
			<-l.slots
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff == 0 {
				l.failing.CompareAndSwap(0, time.Now().UnixNano())
				l.log.Error("mqtt accept failed; retrying with backoff", "err", err)
				backoff = minAcceptBackoff
			} else {
				backoff = min(2*backoff, maxAcceptBackoff)
			}
			time.Sleep(backoff)
			continue
		}
		if backoff != 0 {
			l.log.Info("mqtt accepts again", "after", time.Duration(time.Now().UnixNano()-l.failing.Load()).Round(time.Millisecond))
			backoff = 0
		}
		l.failing.Store(0)
		source := netlimit.Source(conn)
		if !l.perSource.Take(source) {
			// One address holds its share of the unauthenticated slots.
			conn.Close()
			<-l.pending
			<-l.slots
			continue
		}
		tc := &trackedConn{Conn: conn, l: l, source: source}
		// Checked under the lock Close takes, so that no connection
		// escapes the Close that began meanwhile.
		l.mu.Lock()
		closing := l.closed.Load()
		if !closing {
			l.open[tc] = struct{}{}
		}
		l.mu.Unlock()
		if closing {
			tc.Close()
			return
		}
		// The TLS handshake and CONNECT must come soon; after CONNECT the
		// broker sets deadlines from the keep-alive.
		conn.SetDeadline(time.Now().Add(connectTimeout))
		go l.handshake(tls.Server(tc, l.config), establish)
	}
}

// handshake completes the TLS handshake, then hands the connection to the
// broker on a goroutine of its own: a connection whose handshake fails
// never reaches the broker (which would make a client of it), and the
// handshake's deep crypto stays off the stack of the broker's reader,
// which lives as long as the device.
func (l *tlsListener) handshake(conn *tls.Conn, establish listeners.EstablishFn) {
	if err := conn.Handshake(); err != nil {
		conn.Close()
		return
	}
	go establish(l.id, conn)
}

// FailingSince is when accepts started failing (zero while they succeed);
// Stopped reports whether the accept loop ended without Close.
func (l *tlsListener) FailingSince() time.Time {
	if n := l.failing.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (l *tlsListener) Stopped() bool { return l.stopped.Load() }

// Close stops accepting first, so that the room closing clients frees is
// not taken by devices reconnecting, then closes the broker's clients and
// every connection it does not know yet.
func (l *tlsListener) Close(closeClients listeners.CloseFn) {
	l.end.Do(func() {
		l.mu.Lock()
		l.closed.Store(true)
		l.mu.Unlock()
		close(l.done)
		l.ln.Close()
		l.closing.Store(time.Now().Add(closingWrites).UnixNano())
		closeClients(l.id)
		l.mu.Lock()
		open := make([]*trackedConn, 0, len(l.open))
		for c := range l.open {
			open = append(open, c)
		}
		l.mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
}

// trackedConn gives its listener's slots back: the pending one when the
// device has been admitted or refused, the other when it closes.
type trackedConn struct {
	net.Conn
	l          *tlsListener
	source     string
	admitted   sync.Once
	closedOnce sync.Once
}

func (c *trackedConn) admit() {
	c.admitted.Do(func() {
		<-c.l.pending
		c.l.perSource.Release(c.source)
	})
}

// Write gives each write its own deadline and closes a connection whose
// device stops reading. The broker writes to a device while holding that
// client's lock, which publishers to it take too: without the deadline one
// device that stops reading would stall, for up to 1.5 keep-alives, every
// device publishing to its topics.
func (c *trackedConn) Write(p []byte) (int, error) {
	if d := c.l.closing.Load(); d != 0 {
		c.Conn.SetWriteDeadline(time.Unix(0, d))
	} else {
		c.Conn.SetWriteDeadline(time.Now().Add(c.l.writeTimeout))
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.Close()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closedOnce.Do(func() {
		c.admit()
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}

// admitted marks a connection's unauthenticated work as done.
func admitted(tc *tls.Conn) {
	if c, ok := tc.NetConn().(*trackedConn); ok {
		c.admit()
	}
}
