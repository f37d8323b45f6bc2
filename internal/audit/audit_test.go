package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func sample(i int) Record {
	return Record{Time: time.Unix(1700000000, 0).UTC(), Object: Certificate, Profile: "device-csr", Issuer: "abc",
		CertificateID: strings.Repeat("a", 63) + string(rune('0'+i%10)), Serial: "0102", Subject: "CN=device",
		NotBefore: time.Unix(1700000000, 0).UTC(), NotAfter: time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		Requester: Requester{Account: "123456789012", Region: "us-east-1", Operation: "CreateCertificateFromCsr", AccessKeyID: "AKIAEXAMPLE"},
		Outcome:   Signed}
}

func TestLogLine(t *testing.T) {
	var stream bytes.Buffer
	l, err := New(slog.NewJSONHandler(&stream, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(context.Background(), sample(1)); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(stream.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %v\n%s", err, stream.Bytes())
	}
	if line["msg"] != "audit" || line["outcome"] != "signed" || line["serial"] != "0102" || line["subject"] != "CN=device" {
		t.Fatalf("line: %v", line)
	}
	who, _ := line["requester"].(map[string]any)
	if who["access_key_id"] != "AKIAEXAMPLE" || who["operation"] != "CreateCertificateFromCsr" {
		t.Fatalf("requester: %v", who)
	}
	// The server's log level does not filter audit records.
	var quiet bytes.Buffer
	lq, _ := New(slog.NewJSONHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelError}), "")
	if err := lq.Write(context.Background(), sample(1)); err != nil || !strings.Contains(quiet.String(), `"msg":"audit"`) {
		t.Fatalf("an audit record at log level error: %v %q", err, quiet.String())
	}
	var text bytes.Buffer
	lt, _ := New(slog.NewTextHandler(&text, nil), "")
	lt.Write(context.Background(), sample(1))
	if !strings.Contains(text.String(), "msg=audit") || strings.Count(text.String(), "\n") != 1 {
		t.Fatalf("text line: %q", text.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestUnwritableFails: a record that cannot be written is an error, which
// fails the request.
func TestUnwritableFails(t *testing.T) {
	l, _ := New(slog.NewJSONHandler(failingWriter{}, nil), "")
	if err := l.Write(context.Background(), sample(1)); err == nil {
		t.Fatal("a record that was not written was reported written")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(slog.NewJSONHandler(&bytes.Buffer{}, nil), path)
	if err != nil {
		t.Fatal(err)
	}
	l.file.f.Close() // the file goes bad under the log
	if err := l.Write(context.Background(), sample(1)); err == nil {
		t.Fatal("a record the file did not take was reported written")
	}
	if err := l.Write(context.Background(), sample(2)); err == nil {
		t.Fatal("the audit file failed once and then took records again")
	}
}

// TestFileGathersWriters: concurrent writers each get their line into the
// file, whole, once Write returns.
func TestFileGathersWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(slog.NewJSONHandler(&bytes.Buffer{}, nil), path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Write(context.Background(), sample(w*each+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Outcome != Signed {
			t.Fatalf("line %d: %v %q", n, err, sc.Text())
		}
	}
	if n != writers*each {
		t.Fatalf("%d lines, want %d", n, writers*each)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the audit file's mode is %v", fi.Mode().Perm())
	}
}
