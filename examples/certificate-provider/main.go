// Command certificate-provider is an example certificate provider: an AWS
// Lambda function that signs device CSRs with its own CA. See README.md.
//
// Environment:
//
//	SIGNER_CA_CERT      the CA certificate, PEM
//	SIGNER_CA_KEY       the CA private key, PEM (keep it in a secret store in production)
//	SIGNER_VALIDITY     certificate lifetime, a Go duration (default 8760h)
package main

import (
	"log"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/fleetca/fleetca/examples/certificate-provider/signer"
)

func main() {
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
	lambda.Start(s.Handle)
}
