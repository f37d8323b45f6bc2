// Package lambda is the certificate-provider adapter that invokes a provider's
// AWS Lambda function through the Lambda Invoke API, with the AWS SDK's own
// client: against AWS Lambda, or any endpoint that speaks the Invoke API (such
// as `sam local start-lambda`).
package lambda

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/logging"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/fleetca/fleetca/internal/provider"
)

// DefaultTimeout bounds one provider call, as AWS bounds provisioning hooks.
const DefaultTimeout = 5 * time.Second

// maxAnswerBytes bounds the answer fleetca reads: a certificate with its PEM
// armour is a few kilobytes.
const maxAnswerBytes = 64 << 10

// Options configure an Invoker.
type Options struct {
	// Endpoint overrides the Lambda endpoint (for example
	// http://127.0.0.1:3001 for sam local); empty means AWS Lambda.
	Endpoint string
	// Timeout bounds each call; zero means DefaultTimeout.
	Timeout time.Duration
	// Credentials sign the calls; nil means the standard AWS credential
	// sources (environment, shared files, container and instance roles).
	Credentials aws.CredentialsProvider
	// HTTPClient sends the calls; nil means the SDK's.
	HTTPClient *http.Client
	// Logger receives the SDK's own log lines (warnings at warn, the rest
	// at debug), so they come out in fleetca's format; nil means the SDK's
	// default.
	Logger *slog.Logger
}

// Invoker calls certificate-provider functions and pre-provisioning hooks.
// It is a provider.Signer and a provider.Hooks.
type Invoker struct {
	opts    Options
	cfg     aws.Config
	clients sync.Map // region -> *awslambda.Client
}

var (
	_ provider.Signer = (*Invoker)(nil)
	_ provider.Hooks  = (*Invoker)(nil)
)

// New returns an Invoker. It reads the standard AWS configuration (no network).
func New(ctx context.Context, opts Options) (*Invoker, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	var loadOpts []func(*config.LoadOptions) error
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opts.HTTPClient))
	}
	if opts.Logger != nil {
		loadOpts = append(loadOpts, config.WithLogger(sdkLogger(opts.Logger)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, err
	}
	return &Invoker{opts: opts, cfg: cfg}, nil
}

// sdkLogger writes the SDK's log lines to log.
func sdkLogger(log *slog.Logger) logging.Logger {
	log = log.With("component", "aws-sdk")
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		if c == logging.Warn {
			log.Warn(fmt.Sprintf(format, v...))
			return
		}
		log.Debug(fmt.Sprintf(format, v...))
	})
}

// client returns the Lambda client of the function's region.
func (i *Invoker) client(region string) *awslambda.Client {
	if c, ok := i.clients.Load(region); ok {
		return c.(*awslambda.Client)
	}
	c := awslambda.NewFromConfig(i.cfg, func(o *awslambda.Options) {
		o.Region = region
		if i.opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(i.opts.Endpoint)
		}
		// A device that is refused retries; fleetca does not sign twice for it.
		o.RetryMaxAttempts = 1
	})
	actual, _ := i.clients.LoadOrStore(region, c)
	return actual.(*awslambda.Client)
}

// event is what the function receives.
type event struct {
	CertificateSigningRequest string `json:"certificateSigningRequest"`
	PrincipalID               string `json:"principalId"`
	ClientID                  string `json:"clientId"`
	// AWSAccountID is a fleetca addition (AWS states the caller in the
	// function's resource policy instead): the account whose device asks.
	AWSAccountID string `json:"awsAccountId,omitempty"`
}

// answer is what the function must return.
type answer struct {
	CertificatePem string `json:"certificatePem"`
}

// functionError is the payload of a function that raised an error.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// csrRejections are the error types with which a function says the CSR, not
// the function, is at fault.
var csrRejections = map[string]bool{"InvalidRequest": true, "InvalidRequestException": true, "InvalidCSR": true}

// Sign invokes the provider's function synchronously and checks its answer.
func (i *Invoker) Sign(ctx context.Context, req provider.Request, csrKey crypto.PublicKey) ([]byte, error) {
	payload, err := json.Marshal(event{CertificateSigningRequest: req.CSRPEM, PrincipalID: req.PrincipalID, ClientID: req.ClientID, AWSAccountID: req.AccountID})
	if err != nil {
		return nil, err
	}
	out, err := i.invoke(ctx, req.FunctionARN, payload, i.opts.Timeout)
	if err != nil {
		return nil, err
	}
	var a answer
	if err := json.Unmarshal(out, &a); err != nil {
		return nil, provider.Errorf(provider.MalformedAnswer, err, "the answer is not a JSON object")
	}
	return provider.CheckAnswer(a.CertificatePem, csrKey)
}

// PreProvision invokes a pre-provisioning hook synchronously, within
// provider.HookTimeout (or the Invoker's timeout, if shorter).
func (i *Invoker) PreProvision(ctx context.Context, functionARN string, ev provider.HookEvent) (*provider.HookAnswer, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	out, err := i.invoke(ctx, functionARN, payload, min(i.opts.Timeout, provider.HookTimeout))
	if err != nil {
		return nil, err
	}
	return provider.ParseHookAnswer(out)
}

// invoke calls a function synchronously and returns its answer, or an
// *provider.Error: the function raised an error, did not answer in time,
// or could not be called.
func (i *Invoker) invoke(ctx context.Context, functionARN string, payload []byte, timeout time.Duration) ([]byte, error) {
	region, ok := functionRegion(functionARN)
	if !ok {
		return nil, provider.Errorf(provider.InvokeRefused, nil, "%q is not a Lambda function ARN", functionARN)
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := i.client(region).Invoke(callCtx, &awslambda.InvokeInput{
		FunctionName:   aws.String(functionARN),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return nil, invokeError(ctx, callCtx, err)
	}
	if len(out.Payload) > maxAnswerBytes {
		return nil, provider.Errorf(provider.MalformedAnswer, nil, "the answer has %d bytes, more than %d", len(out.Payload), maxAnswerBytes)
	}
	if out.FunctionError != nil {
		var fe functionError
		json.Unmarshal(out.Payload, &fe)
		failure := provider.FunctionFailed
		if csrRejections[fe.ErrorType] {
			failure = provider.CSRRejected
		}
		return nil, provider.Errorf(failure, nil, "%s (%s): %s", aws.ToString(out.FunctionError), fe.ErrorType, fe.ErrorMessage)
	}
	return out.Payload, nil
}

// invokeError classifies a failed Invoke call.
func invokeError(parent, call context.Context, err error) error {
	if parent.Err() != nil {
		return parent.Err() // the caller gave up; not the provider's fault
	}
	if errors.Is(call.Err(), context.DeadlineExceeded) {
		return provider.Errorf(provider.TimedOut, err, "no answer within the time allowed")
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return provider.Errorf(provider.InvokeRefused, err, "the Invoke API refused the call: %s", apiErr.ErrorCode())
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return provider.Errorf(provider.Unreachable, err, "the Invoke endpoint could not be reached")
	}
	return provider.Errorf(provider.InvokeRefused, err, "the call failed")
}

// functionRegion returns the region of a Lambda function ARN
// (arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]).
func functionRegion(arn string) (string, bool) {
	parts := strings.Split(arn, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || parts[3] == "" {
		return "", false
	}
	return parts[3], true
}
