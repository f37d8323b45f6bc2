// Package apierr defines the errors fleetca's operations return to clients,
// named after the exceptions of the AWS IoT model and the AWS front door. It
// knows nothing of HTTP or MQTT: each front end maps a Kind to its wire form in
// one place.
package apierr

import (
	"errors"
	"fmt"
)

// Kind names an error the way the AWS model does; the string is the error code
// sent on the wire.
type Kind string

// The error kinds fleetca returns.
const (
	InvalidRequest             Kind = "InvalidRequestException"
	Throttling                 Kind = "ThrottlingException"
	CertificateValidation      Kind = "CertificateValidationException"
	RegistrationCodeValidation Kind = "RegistrationCodeValidationException"
	Unauthorized               Kind = "UnauthorizedException"
	ResourceNotFound           Kind = "ResourceNotFoundException"
	CertificateState           Kind = "CertificateStateException"
	ResourceAlreadyExists      Kind = "ResourceAlreadyExistsException"
	DeleteConflict             Kind = "DeleteConflictException"
	CertificateConflict        Kind = "CertificateConflictException"
	LimitExceeded              Kind = "LimitExceededException"
	InternalFailure            Kind = "InternalFailureException"
	ServiceUnavailable         Kind = "ServiceUnavailableException"
	UnknownOperation           Kind = "UnknownOperationException"
	RequestEntityTooLarge      Kind = "RequestEntityTooLargeException"
	MissingAuthenticationToken Kind = "MissingAuthenticationTokenException"
	UnrecognizedClient         Kind = "UnrecognizedClientException"
	InvalidSignature           Kind = "InvalidSignatureException"
	IncompleteSignature        Kind = "IncompleteSignatureException"
	AccessDenied               Kind = "AccessDeniedException"
	MalformedPolicy            Kind = "MalformedPolicyException"
	VersionsLimitExceeded      Kind = "VersionsLimitExceededException"
	VersionConflict            Kind = "VersionConflictException"
	// ResourceRegistrationFailure is a provisioning template that could
	// not be applied: a missing parameter, a resource it names that does
	// not exist, a value the registry refuses.
	ResourceRegistrationFailure Kind = "ResourceRegistrationFailureException"
	// ConflictingResourceUpdate is a provisioning plan that conflicts with
	// what exists: an override setting of FAIL, a certificate attached
	// exclusively elsewhere.
	ConflictingResourceUpdate Kind = "ConflictingResourceUpdateException"
)

// Kinds lists every Kind, so that each front end's table of renderings can
// be checked to be complete.
var Kinds = []Kind{
	InvalidRequest, Throttling, CertificateValidation, RegistrationCodeValidation, Unauthorized,
	ResourceNotFound, CertificateState, ResourceAlreadyExists, DeleteConflict, CertificateConflict,
	LimitExceeded, InternalFailure, ServiceUnavailable, UnknownOperation, RequestEntityTooLarge,
	MissingAuthenticationToken, UnrecognizedClient, InvalidSignature, IncompleteSignature, AccessDenied,
	MalformedPolicy, VersionsLimitExceeded, VersionConflict, ResourceRegistrationFailure, ConflictingResourceUpdate,
}

// Error is an error meant for the client: its Message is safe to show.
type Error struct {
	Kind    Kind
	Message string
	// ResourceID and ResourceARN are set on ResourceAlreadyExists.
	ResourceID  string
	ResourceARN string
	// Cause is what went wrong inside, for the log; it is never sent.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return string(e.Kind) + ": " + e.Message + " (" + e.Cause.Error() + ")"
	}
	return string(e.Kind) + ": " + e.Message
}

// Unwrap returns the cause, so that errors.Is and errors.As see through to it.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an error of the kind with a formatted message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the kind with a formatted message that keeps
// cause for the log.
func Wrap(kind Kind, cause error, format string, args ...any) *Error {
	e := New(kind, format, args...)
	e.Cause = cause
	return e
}

// AlreadyExists returns a ResourceAlreadyExists error naming the resource.
func AlreadyExists(id, arn, format string, args ...any) *Error {
	e := New(ResourceAlreadyExists, format, args...)
	e.ResourceID, e.ResourceARN = id, arn
	return e
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Is reports whether err carries an *Error of the kind.
func Is(err error, kind Kind) bool {
	e, ok := As(err)
	return ok && e.Kind == kind
}
