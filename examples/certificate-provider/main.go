// Command certificate-provider is an example certificate provider: an AWS
// Lambda function that signs device CSRs with its own CA. See README.md.
//
// Environment:
//
//	SIGNER_CA_CERT      the CA certificate, PEM
//	SIGNER_CA_KEY       the CA private key, PEM (keep it in a secret store in production)
//	SIGNER_VALIDITY     certificate lifetime, a Go duration (default 8760h)
//
// With -local ADDR it serves the Lambda Invoke API itself on ADDR, as the
// function "signer", so that it runs on a laptop without the SAM CLI:
//
//	go run ./examples/certificate-provider -local 127.0.0.1:3001
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fleetca/fleetca/examples/certificate-provider/signer"
	"github.com/fleetca/fleetca/internal/lambdalocal"
)

func main() {
	local := flag.String("local", "", "serve the Lambda Invoke API on this address, as the function \"signer\", instead of running in Lambda")
	flag.Parse()
	validity := 365 * 24 * time.Hour
	if v := os.Getenv("SIGNER_VALIDITY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			log.Fatalf("SIGNER_VALIDITY: %v", err)
		}
		validity = d
	}
	s, err := signer.New([]byte(os.Getenv("SIGNER_CA_CERT")), []byte(os.Getenv("SIGNER_CA_KEY")), validity)
	if err != nil {
		log.Fatal(err)
	}
	if *local != "" {
		log.Printf("serving the Lambda Invoke API on http://%s for the function signer", *local)
		srv := &http.Server{Addr: *local, Handler: lambdalocal.Handler(map[string]any{"signer": s.Handle}, nil), ReadHeaderTimeout: 10 * time.Second}
		log.Fatal(srv.ListenAndServe())
	}
	lambda.Start(s.Handle)
}
