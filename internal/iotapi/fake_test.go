package iotapi

import (
	"context"
	"slices"
	"sync"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
)

// fakeRegistry is a Registry that does only what a test tells it. The
// embedded interface is nil, so a method no test implements panics, and so
// does one whose function the test left nil: either way the handler answers
// 500, which no test expects. Every call is recorded first, so a test can
// also see that the registry was not reached at all.
type fakeRegistry struct {
	Registry

	createKeysAndCertificate func(ctx context.Context, scope iot.Scope, setAsActive bool) (*registry.CreatedCertificate, error)
	describeCertificate      func(ctx context.Context, scope iot.Scope, id string) (*iot.Certificate, error)
	listCertificates         func(ctx context.Context, scope iot.Scope, opts registry.ListOptions) (*registry.CertificateList, error)
	updateCertificateStatus  func(ctx context.Context, scope iot.Scope, id string, status iot.Status) error
	deleteCertificate        func(ctx context.Context, scope iot.Scope, id string, forceDelete bool) error

	mu    sync.Mutex
	calls []fakeCall
}

// fakeCall is one call the registry received, without its context.
type fakeCall struct {
	Method string
	Scope  iot.Scope
	Args   []any
}

func (f *fakeRegistry) record(method string, scope iot.Scope, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{Method: method, Scope: scope, Args: args})
}

// Calls returns the calls received so far.
func (f *fakeRegistry) Calls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeRegistry) CreateKeysAndCertificate(ctx context.Context, scope iot.Scope, setAsActive bool) (*registry.CreatedCertificate, error) {
	f.record("CreateKeysAndCertificate", scope, setAsActive)
	return f.createKeysAndCertificate(ctx, scope, setAsActive)
}

func (f *fakeRegistry) DescribeCertificate(ctx context.Context, scope iot.Scope, id string) (*iot.Certificate, error) {
	f.record("DescribeCertificate", scope, id)
	return f.describeCertificate(ctx, scope, id)
}

func (f *fakeRegistry) ListCertificates(ctx context.Context, scope iot.Scope, opts registry.ListOptions) (*registry.CertificateList, error) {
	f.record("ListCertificates", scope, opts)
	return f.listCertificates(ctx, scope, opts)
}

func (f *fakeRegistry) UpdateCertificateStatus(ctx context.Context, scope iot.Scope, id string, status iot.Status) error {
	f.record("UpdateCertificateStatus", scope, id, status)
	return f.updateCertificateStatus(ctx, scope, id, status)
}

func (f *fakeRegistry) DeleteCertificate(ctx context.Context, scope iot.Scope, id string, forceDelete bool) error {
	f.record("DeleteCertificate", scope, id, forceDelete)
	return f.deleteCertificate(ctx, scope, id, forceDelete)
}
