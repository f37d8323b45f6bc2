package server

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/fleetca/fleetca/internal/netlimit"
)

// limitListener bounds the API's connections: at most max are open, and at
// most maxPerSource from one address; at the bound it stops accepting, so
// that further connections wait in the kernel's backlog instead of taking
// file descriptors. shed (as the http.Server's ConnState) closes keep-alive
// connections that go idle while the listener is three quarters full, so
// that idle clients cannot hold the room that active ones need.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{} // closed by Close, so a full listener stops waiting
	closeOnce sync.Once
	perSource *netlimit.PerSource
	open      atomic.Int64
}

func newLimitListener(ln net.Listener, limit int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, limit), done: make(chan struct{}), perSource: netlimit.NewPerSource(max(limit/4, 8))}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		source := netlimit.Source(c)
		if !l.perSource.Take(source) {
			c.Close()
			<-l.slots
			continue
		}
		l.open.Add(1)
		return &limitConn{Conn: c, l: l, source: source}, nil
	}
}

// Close stops accepting, also while every slot is taken.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// shed is the http.Server's ConnState hook.
func (l *limitListener) shed(c net.Conn, state http.ConnState) {
	if state == http.StateIdle && l.open.Load() > int64(cap(l.slots))*3/4 {
		c.Close()
	}
}

type limitConn struct {
	net.Conn
	l      *limitListener
	source string
	once   sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.perSource.Release(c.source)
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}
