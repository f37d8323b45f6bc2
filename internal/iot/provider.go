package iot

import "time"

// OperationCreateCertificateFromCsr is the one operation a certificate
// provider can be the account default for.
const OperationCreateCertificateFromCsr = "CreateCertificateFromCsr"

// CertificateProvider is a scope's certificate provider: the Lambda function
// that signs device CSRs of the fleet-provisioning API instead of fleetca's CA.
type CertificateProvider struct {
	Scope                       Scope
	Name                        string
	LambdaFunctionARN           string
	AccountDefaultForOperations []string
	CreatedAt                   time.Time
	LastModifiedAt              time.Time
}

// CertificateProviderARN is the ARN of a certificate provider in the scope.
func (s Scope) CertificateProviderARN(name string) string {
	return s.ARN(TypeCertificateProvider, name)
}

// ARN is the provider's ARN.
func (p *CertificateProvider) ARN() string { return p.Scope.CertificateProviderARN(p.Name) }
