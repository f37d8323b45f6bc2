package iotapi

import (
	"net"
	"strings"

	"github.com/fleetca/fleetca/internal/apierr"
)

// DescribeEndpoint answers the MQTT endpoint's host for the data endpoint
// types. AWS gives every account a host of its own; fleetca's equivalent is
// <account-id>.<host>, whose first label picks the account as the TLS
// server name (see mqttapi's admission), so a DNS name is answered with the
// account in front. localhost and IP addresses have no subdomains to
// resolve, and are answered as they are.

func (h *Handler) endpointOperations() []operation {
	return []operation{{"DescribeEndpoint", "GET /endpoint", h.describeEndpoint}}
}

type describeEndpointOutput struct {
	EndpointAddress string `json:"endpointAddress"`
}

func (h *Handler) describeEndpoint(c *call) (any, error) {
	typ := c.query.Get("endpointType")
	if len(typ) > 128 {
		return nil, validation(typ, "endpointType", "Member must have length less than or equal to 128")
	}
	switch typ {
	case "", "iot:Data", "iot:Data-ATS":
	case "iot:CredentialProvider", "iot:Jobs", "iot:DeviceAdvisor", "iot:Data-Beta":
		return nil, apierr.New(apierr.InvalidRequest, "fleetca serves no %s endpoint; iot:Data-ATS is the MQTT endpoint.", typ)
	default:
		return nil, apierr.New(apierr.InvalidRequest, "Endpoint type %s is not valid.", typ)
	}
	if h.endpoint == "" {
		return nil, apierr.New(apierr.InvalidRequest, "The MQTT endpoint is disabled on this server (--mqtt-addr).")
	}
	return describeEndpointOutput{EndpointAddress: endpointAddress(h.endpoint, c.scope.AccountID)}, nil
}

// endpointAddress is the account's host for the endpoint host.
func endpointAddress(host, account string) string {
	if host == "localhost" || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return host
	}
	return account + "." + host
}
