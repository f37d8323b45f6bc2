// Package provider declares what fleetca needs from the functions it asks:
// a certificate provider, which signs device CSRs in place of fleetca's CA,
// and a pre-provisioning hook, which decides whether a device may be
// provisioned; and the ways asking one can fail. Adapters (provider/lambda)
// implement Signer and Hooks.
package provider

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/pki"
)

// Request is one signing request, as the provider receives it.
type Request struct {
	// FunctionARN is the provider's Lambda function.
	FunctionARN string
	// AccountID is the account whose device asks, so that a function shared
	// by several accounts knows whose CA to sign with, or refuses.
	AccountID string
	// CSRPEM is the device's certificate signing request.
	CSRPEM string
	// PrincipalID is the certificate ID the device connected with.
	PrincipalID string
	// ClientID is the device's MQTT client ID.
	ClientID string
}

// Signer asks a provider to sign a CSR. It returns the DER of a certificate
// that certifies csrKey, or an *Error.
type Signer interface {
	Sign(ctx context.Context, req Request, csrKey crypto.PublicKey) ([]byte, error)
}

// Failure says how a provider call failed.
type Failure string

// The failures a Signer reports.
const (
	// FunctionFailed: the function ran and raised an error.
	FunctionFailed Failure = "FunctionError"
	// CSRRejected: the function said the CSR is not acceptable.
	CSRRejected Failure = "CSRRejected"
	// TimedOut: no answer within the time allowed.
	TimedOut Failure = "Timeout"
	// Unreachable: the Invoke endpoint could not be reached.
	Unreachable Failure = "Unreachable"
	// InvokeRefused: the Invoke API refused the call (unknown function,
	// access denied, throttled).
	InvokeRefused Failure = "InvokeRefused"
	// MalformedAnswer: the answer is not {"certificatePem": <one PEM certificate>}.
	MalformedAnswer Failure = "MalformedAnswer"
	// WrongKey: the answered certificate certifies another key than the CSR's.
	WrongKey Failure = "WrongKey"
)

// Error is a failed provider call.
type Error struct {
	Failure Failure
	// Message describes the failure; it may quote the function's own error
	// message, so it is for logs and operators rather than devices.
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("certificate provider: %s: %s: %v", e.Failure, e.Message, e.Err)
	}
	return fmt.Sprintf("certificate provider: %s: %s", e.Failure, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the failure.
func Errorf(f Failure, err error, format string, args ...any) *Error {
	return &Error{Failure: f, Message: fmt.Sprintf(format, args...), Err: err}
}

// FailureOf returns the failure of err, or "" if err is not an *Error.
func FailureOf(err error) Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return ""
}

// CheckAnswer accepts a provider's certificate only if it is one PEM
// certificate that certifies csrKey, and returns its DER.
func CheckAnswer(certPEM string, csrKey crypto.PublicKey) ([]byte, error) {
	if certPEM == "" {
		return nil, Errorf(MalformedAnswer, nil, "the answer has no certificatePem")
	}
	cert, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return nil, Errorf(MalformedAnswer, err, "certificatePem is not a certificate")
	}
	k, ok := csrKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(cert.PublicKey) {
		return nil, Errorf(WrongKey, nil, "the certificate certifies another key than the CSR's")
	}
	if cert.BasicConstraintsValid && cert.IsCA {
		return nil, Errorf(MalformedAnswer, nil, "the certificate is a CA certificate")
	}
	return cert.Raw, nil
}

// HookTimeout bounds a pre-provisioning hook, as AWS does: a hook that has
// not answered in five seconds has refused.
const HookTimeout = 5 * time.Second

// HookEvent is what a pre-provisioning hook receives, as AWS sends it.
type HookEvent struct {
	ClaimCertificateID string            `json:"claimCertificateId"`
	CertificateID      string            `json:"certificateId"`
	CertificatePEM     string            `json:"certificatePem"`
	TemplateARN        string            `json:"templateArn"`
	ClientID           string            `json:"clientId"`
	Parameters         map[string]string `json:"parameters"`
}

// HookAnswer is a pre-provisioning hook's decision.
type HookAnswer struct {
	Allow bool
	// ParameterOverrides replace the device's parameters of the same name.
	ParameterOverrides map[string]string
}

// Hooks asks pre-provisioning hooks whether a device may be provisioned.
// It returns the hook's answer, or an *Error.
type Hooks interface {
	PreProvision(ctx context.Context, functionARN string, ev HookEvent) (*HookAnswer, error)
}

// ParseHookAnswer reads a hook's answer: {"allowProvisioning": true,
// "parameterOverrides": {...}}. AWS's prose once writes the flag as the
// string "true", so that is accepted too; any other value, or none, is a
// refusal. Overrides must be strings.
func ParseHookAnswer(payload []byte) (*HookAnswer, error) {
	var raw struct {
		AllowProvisioning  json.RawMessage   `json:"allowProvisioning"`
		ParameterOverrides map[string]string `json:"parameterOverrides"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, Errorf(MalformedAnswer, err, "the answer is not a JSON object with string parameterOverrides")
	}
	a := &HookAnswer{ParameterOverrides: raw.ParameterOverrides}
	var b bool
	var s string
	switch {
	case json.Unmarshal(raw.AllowProvisioning, &b) == nil:
		a.Allow = b
	case json.Unmarshal(raw.AllowProvisioning, &s) == nil:
		a.Allow = strings.EqualFold(s, "true")
	}
	return a, nil
}
