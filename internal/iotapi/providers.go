package iotapi

import (
	"github.com/fleetca/fleetca/internal/registry"
)

func (h *Handler) providerOperations() []operation {
	return []operation{
		{"CreateCertificateProvider", "POST /certificate-providers/{certificateProviderName}", h.createCertificateProvider},
		{"DescribeCertificateProvider", "GET /certificate-providers/{certificateProviderName}", h.describeCertificateProvider},
		// boto3 lists with a trailing slash, Go and JavaScript without; {$}
		// matches the slash form exactly, not every path below it.
		{"ListCertificateProviders", "GET /certificate-providers", h.listCertificateProviders},
		{"ListCertificateProviders", "GET /certificate-providers/{$}", h.listCertificateProviders},
		{"UpdateCertificateProvider", "PUT /certificate-providers/{certificateProviderName}", h.updateCertificateProvider},
		{"DeleteCertificateProvider", "DELETE /certificate-providers/{certificateProviderName}", h.deleteCertificateProvider},
	}
}

type createCertificateProviderInput struct {
	LambdaFunctionArn           *string  `json:"lambdaFunctionArn"`
	AccountDefaultForOperations []string `json:"accountDefaultForOperations"`
	ClientToken                 *string  `json:"clientToken"`
	Tags                        []tag    `json:"tags"`
}

type providerRef struct {
	CertificateProviderName string `json:"certificateProviderName"`
	CertificateProviderArn  string `json:"certificateProviderArn"`
}

func (h *Handler) createCertificateProvider(c *call) (any, error) {
	var in createCertificateProviderInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.LambdaFunctionArn == nil {
		return nil, validation("null", "lambdaFunctionArn", "Member must not be null")
	}
	if in.AccountDefaultForOperations == nil {
		return nil, validation("null", "accountDefaultForOperations", "Member must not be null")
	}
	if err := checkDefaultOperations(in.AccountDefaultForOperations); err != nil {
		return nil, err
	}
	if in.ClientToken != nil {
		if err := checkClientToken(*in.ClientToken); err != nil {
			return nil, err
		}
	}
	name, err := c.providerName()
	if err != nil {
		return nil, err
	}
	tags, err := decodeTags(in.Tags, "tags")
	if err != nil {
		return nil, err
	}
	req := registry.CreateProviderInput{
		Name:                        name,
		LambdaFunctionARN:           *in.LambdaFunctionArn,
		AccountDefaultForOperations: in.AccountDefaultForOperations,
		Tags:                        tags,
	}
	if in.ClientToken != nil {
		req.ClientToken = *in.ClientToken
	}
	p, err := h.reg.CreateCertificateProvider(c.r.Context(), c.scope, req)
	if err != nil {
		return nil, err
	}
	return providerRef{CertificateProviderName: p.Name, CertificateProviderArn: p.ARN()}, nil
}

type describeCertificateProviderOutput struct {
	CertificateProviderName     string   `json:"certificateProviderName"`
	CertificateProviderArn      string   `json:"certificateProviderArn"`
	LambdaFunctionArn           string   `json:"lambdaFunctionArn"`
	AccountDefaultForOperations []string `json:"accountDefaultForOperations"`
	CreationDate                epoch    `json:"creationDate"`
	LastModifiedDate            epoch    `json:"lastModifiedDate"`
}

func (h *Handler) describeCertificateProvider(c *call) (any, error) {
	name, err := c.providerName()
	if err != nil {
		return nil, err
	}
	p, err := h.reg.DescribeCertificateProvider(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	return describeCertificateProviderOutput{
		CertificateProviderName:     p.Name,
		CertificateProviderArn:      p.ARN(),
		LambdaFunctionArn:           p.LambdaFunctionARN,
		AccountDefaultForOperations: p.AccountDefaultForOperations,
		CreationDate:                epoch(p.CreatedAt),
		LastModifiedDate:            epoch(p.LastModifiedAt),
	}, nil
}

type listCertificateProvidersOutput struct {
	CertificateProviders []providerRef `json:"certificateProviders"`
	NextToken            string        `json:"nextToken,omitempty"`
}

func (h *Handler) listCertificateProviders(c *call) (any, error) {
	token := c.query.Get("nextToken")
	if c.query.Has("nextToken") && (len(token) == 0 || len(token) > 1024 || !isBase64(token)) {
		return nil, validation(token, "nextToken", "Member must satisfy regular expression pattern: [A-Za-z0-9+/]+={0,2}")
	}
	ascending, err := c.boolQuery("isAscendingOrder")
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListCertificateProviders(c.r.Context(), c.scope, token, ascending)
	if err != nil {
		return nil, err
	}
	out := listCertificateProvidersOutput{CertificateProviders: make([]providerRef, len(list)), NextToken: next}
	for i := range list {
		out.CertificateProviders[i] = providerRef{CertificateProviderName: list[i].Name, CertificateProviderArn: list[i].ARN()}
	}
	return out, nil
}

type updateCertificateProviderInput struct {
	LambdaFunctionArn           *string  `json:"lambdaFunctionArn"`
	AccountDefaultForOperations []string `json:"accountDefaultForOperations"`
}

func (h *Handler) updateCertificateProvider(c *call) (any, error) {
	var in updateCertificateProviderInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.providerName()
	if err != nil {
		return nil, err
	}
	if in.AccountDefaultForOperations != nil {
		if err := checkDefaultOperations(in.AccountDefaultForOperations); err != nil {
			return nil, err
		}
	}
	p, err := h.reg.UpdateCertificateProvider(c.r.Context(), c.scope, name, registry.UpdateProviderInput{
		LambdaFunctionARN:           in.LambdaFunctionArn,
		AccountDefaultForOperations: in.AccountDefaultForOperations,
	})
	if err != nil {
		return nil, err
	}
	return providerRef{CertificateProviderName: p.Name, CertificateProviderArn: p.ARN()}, nil
}

func (h *Handler) deleteCertificateProvider(c *call) (any, error) {
	name, err := c.providerName()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeleteCertificateProvider(c.r.Context(), c.scope, name)
}
