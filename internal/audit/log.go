package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// Log writes records: one line each to the process's log stream, through
// a slog handler of the server's format whatever the log level (an audit
// record is not a debug line), and, when a file is named, one JSON line
// each appended to it and on disk before Write returns.
type Log struct {
	handler slog.Handler
	file    *fileSink
}

// New returns a Log writing through handler (the server's log's: its
// format and stream, not its level, since Handle does not filter) and
// appending to the file at path unless it is empty.
func New(handler slog.Handler, path string) (*Log, error) {
	l := &Log{handler: handler}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("the audit log: %w", err)
		}
		// A new file's name must survive a crash as its records do.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("the audit log: %w", err)
		}
		l.file = newFileSink(f)
	}
	return l, nil
}

// Write records r. An error means the record may not have been written;
// the caller fails the request it belongs to.
func (l *Log) Write(ctx context.Context, r Record) error {
	rec := slog.NewRecord(r.Time, slog.LevelInfo, "audit", 0)
	rec.AddAttrs(attrs(r)...)
	if err := l.handler.Handle(ctx, rec); err != nil {
		return fmt.Errorf("audit: writing the record: %w", err)
	}
	if l.file == nil {
		return nil
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return l.file.append(append(line, '\n'))
}

// Err is the error that stopped the audit file taking records, if one
// has: every signature fails from then on, so the server is not ready.
func (l *Log) Err() error {
	if l.file == nil {
		return nil
	}
	l.file.mu.Lock()
	defer l.file.mu.Unlock()
	return l.file.err
}

// Close closes the audit file.
func (l *Log) Close() error {
	if l.file == nil {
		return nil
	}
	return l.file.close()
}

// attrs are r's fields as log attributes, the empty ones left out.
func attrs(r Record) []slog.Attr {
	a := []slog.Attr{slog.String("object", r.Object)}
	str := func(k, v string) {
		if v != "" {
			a = append(a, slog.String(k, v))
		}
	}
	str("profile", r.Profile)
	str("issuer", r.Issuer)
	str("certificate_id", r.CertificateID)
	str("serial", r.Serial)
	str("subject", r.Subject)
	if len(r.SANs) > 0 {
		a = append(a, slog.Any("sans", r.SANs))
	}
	if !r.NotBefore.IsZero() {
		a = append(a, slog.Time("not_before", r.NotBefore), slog.Time("not_after", r.NotAfter))
	}
	if r.Object == CRL {
		a = append(a, slog.Int64("crl_number", r.CRLNumber), slog.Int("entries", r.Entries))
	}
	str("status", r.Status)
	q := r.Requester
	var who []any
	for _, kv := range [][2]string{{"account", q.Account}, {"region", q.Region}, {"operation", q.Operation},
		{"access_key_id", q.AccessKeyID}, {"device_certificate_id", q.CertificateID}, {"client_id", q.ClientID},
		{"request_id", q.RequestID}, {"remote", q.Remote}} {
		if kv[1] != "" {
			who = append(who, slog.String(kv[0], kv[1]))
		}
	}
	a = append(a, slog.Group("requester", who...))
	str("outcome", r.Outcome)
	str("reason", r.Reason)
	return a
}

// fileSink appends lines to a file and syncs it, one sync for every line
// appended while the previous sync ran: the first writer to find no sync
// running becomes the leader and syncs for all who arrived meanwhile.
type fileSink struct {
	f    *os.File
	mu   sync.Mutex
	cond *sync.Cond
	// buf holds the lines of batch filling; synced is the last batch on
	// disk.
	buf             []byte
	filling, synced uint64
	leading         bool
	// err, once set, fails every later append: the audit trail has a hole
	// from there, and requests must not be answered as if it had none.
	err error
}

func newFileSink(f *os.File) *fileSink {
	s := &fileSink{f: f, filling: 1}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *fileSink) append(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.buf = append(s.buf, line...)
	mine := s.filling
	if s.leading {
		for s.synced < mine && s.err == nil {
			s.cond.Wait()
		}
		return s.err
	}
	s.leading = true
	for len(s.buf) > 0 && s.err == nil {
		batch, data := s.filling, s.buf
		s.filling, s.buf = s.filling+1, nil
		s.mu.Unlock()
		_, err := s.f.Write(data)
		if err == nil {
			err = s.f.Sync()
		}
		s.mu.Lock()
		if err != nil {
			s.err = fmt.Errorf("audit: appending to %s: %w", s.f.Name(), err)
		}
		s.synced = batch
		s.cond.Broadcast()
	}
	s.leading = false
	return s.err
}

func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = errors.New("audit: the audit log is closed")
	}
	return s.f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
