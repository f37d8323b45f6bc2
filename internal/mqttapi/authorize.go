package mqttapi

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"strconv"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// The resource types of the IoT actions' ARNs.
const (
	resourceClient      = "client/"
	resourceTopic       = "topic/"
	resourceTopicFilter = "topicfilter/"
)

// connInfo is what a device proved and sent when it connected: what the
// policy variables other than the thing's resolve to. It does not change
// while the connection lasts.
type connInfo struct {
	clientID  string
	domain    string
	sourceIP  string
	willTopic string
	serial    string
	subject   map[string][]string
	issuer    map[string][]string
}

// Certificate attributes by the name the policy variables give them.
var attributeOIDs = map[string]asn1.ObjectIdentifier{
	"CommonName": {2, 5, 4, 3}, "Surname": {2, 5, 4, 4}, "SerialNumber": {2, 5, 4, 5}, "Country": {2, 5, 4, 6},
	"State": {2, 5, 4, 8}, "Organization": {2, 5, 4, 10}, "OrganizationalUnit": {2, 5, 4, 11}, "Title": {2, 5, 4, 12},
	"GivenName": {2, 5, 4, 42}, "Initials": {2, 5, 4, 43}, "GenerationQualifier": {2, 5, 4, 44},
	"DistinguishedNameQualifier": {2, 5, 4, 46}, "Pseudonym": {2, 5, 4, 65},
}

// nameAttributes lists a name's attribute values by the variables' names,
// in the order the certificate has them.
func nameAttributes(name pkix.Name) map[string][]string {
	m := map[string][]string{}
	for _, atv := range name.Names {
		for attr, oid := range attributeOIDs {
			if atv.Type.Equal(oid) {
				if s, ok := atv.Value.(string); ok {
					m[attr] = append(m[attr], s)
				}
			}
		}
	}
	return m
}

func newConnInfo(clientID, domain string, remote string, leaf *x509.Certificate) *connInfo {
	c := &connInfo{clientID: clientID, domain: domain, serial: leaf.SerialNumber.String(),
		subject: nameAttributes(leaf.Subject), issuer: nameAttributes(leaf.Issuer)}
	if host, _, err := net.SplitHostPort(remote); err == nil {
		c.sourceIP = host
	}
	if len(leaf.DNSNames) > 0 {
		c.subject["AlternativeName.DNSName"] = leaf.DNSNames
	}
	if len(leaf.EmailAddresses) > 0 {
		c.subject["AlternativeName.RFC822Name"] = leaf.EmailAddresses
	}
	for _, u := range leaf.URIs {
		c.subject["AlternativeName.UniformResourceIdentifier"] = append(c.subject["AlternativeName.UniformResourceIdentifier"], u.String())
	}
	for _, ip := range leaf.IPAddresses {
		c.subject["AlternativeName.IPAddress"] = append(c.subject["AlternativeName.IPAddress"], ip.String())
	}
	return c
}

// grant is what a session may do: its certificate's policies and the
// thing its thing variables resolve to, with the connection's facts. It is
// the policy.Context of every evaluation, and is replaced whole when a
// change reaches the session, so each evaluation sees one grant.
type grant struct {
	conn     *connInfo
	policies []*policy.Policy
	// names are the policies' names, in policies' order; unparsable names
	// attached policies whose document grants nothing (registry.Grants).
	names      []string
	unparsable []string
	thing      *iot.Thing
	// seen is the follower's position when the grant was read.
	seen int64
}

func newGrant(conn *connInfo, g *registry.Grants, seen int64) *grant {
	return &grant{conn: conn, policies: g.Policies, names: g.PolicyNames, unparsable: g.Unparsable, thing: g.Thing, seen: seen}
}

// with is the grant with the named policy's default version p in force
// (nil: the policy is gone or grants nothing).
func (g *grant) with(name string, p *policy.Policy, seen int64) *grant {
	next := &grant{conn: g.conn, thing: g.thing, seen: seen}
	for i, n := range g.names {
		if n != name {
			next.names, next.policies = append(next.names, n), append(next.policies, g.policies[i])
		}
	}
	for _, n := range g.unparsable {
		if n != name {
			next.unparsable = append(next.unparsable, n)
		}
	}
	if p != nil {
		next.names, next.policies = append(next.names, name), append(next.policies, p)
	} else {
		next.unparsable = append(next.unparsable, name)
	}
	return next
}

// Value implements policy.Context.
func (g *grant) Value(k policy.Key) (string, bool) {
	switch k.Name {
	case "iot:ClientId":
		return g.conn.clientID, true
	case "iot:DomainName":
		return g.conn.domain, g.conn.domain != ""
	case "aws:SourceIp":
		return g.conn.sourceIP, g.conn.sourceIP != ""
	case "iot:LastWillTopic":
		return g.conn.willTopic, g.conn.willTopic != ""
	case "iot:Certificate.SerialNumber":
		return g.conn.serial, true
	case "iot:Connection.Thing.IsAttached":
		if g.thing != nil {
			return "true", true
		}
		return "false", true
	case "iot:Connection.Thing.ThingName":
		if g.thing == nil {
			return "", false
		}
		return g.thing.Name, true
	case "iot:Connection.Thing.ThingTypeName":
		if g.thing == nil || g.thing.TypeName == "" {
			return "", false
		}
		return g.thing.TypeName, true
	case "iot:Connection.Thing.Attributes":
		if g.thing == nil {
			return "", false
		}
		v, ok := g.thing.Attributes[k.Arg]
		return v, ok
	}
	values, ok := g.certificateValues(k.Name)
	if !ok || k.Arg == "List" {
		return "", false
	}
	i := 0
	if k.Arg != "" {
		n, err := strconv.Atoi(k.Arg)
		if err != nil {
			return "", false
		}
		i = n
	}
	if i < 0 || i >= len(values) {
		return "", false
	}
	return values[i], true
}

// Values implements policy.Context: the .List certificate variables.
func (g *grant) Values(k policy.Key) ([]string, bool) {
	if k.Arg != "List" {
		return nil, false
	}
	return g.certificateValues(k.Name)
}

func (g *grant) certificateValues(name string) ([]string, bool) {
	const subject, issuer = "iot:Certificate.Subject.", "iot:Certificate.Issuer."
	var m map[string][]string
	switch {
	case len(name) > len(subject) && name[:len(subject)] == subject:
		m, name = g.conn.subject, name[len(subject):]
	case len(name) > len(issuer) && name[:len(issuer)] == issuer:
		m, name = g.conn.issuer, name[len(issuer):]
	default:
		return nil, false
	}
	v, ok := m[name]
	return v, ok && len(v) > 0
}

// allowed decides an action of a session on a resource (resourceClient,
// resourceTopic or resourceTopicFilter, and the device's name of it).
// Without grants (none read yet) nothing is allowed.
func (h *hook) allowed(sess *session, action policy.Action, resourceType, name string) bool {
	if h.skipPolicies {
		return true
	}
	g := sess.grant.Load()
	if g == nil {
		return false
	}
	r := policy.Request{Action: action, Resource: sess.arnPrefix + resourceType + name, Context: g}
	return policy.Evaluate(g.policies, &r) == policy.Allowed
}

// dependency is something a session's grant was read from: a policy, a
// principal or a thing of a scope. A change to it means reading the grant
// again.
type dependency struct {
	scope iot.Scope
	kind  registry.ChangeKind
	name  string
}

// dependents indexes sessions by what their grants depend on, so that a
// change reaches the sessions it affects without visiting the others.
type dependents struct {
	mu     sync.Mutex
	by     map[dependency]map[*mqtt.Client]struct{}
	keysOf map[*mqtt.Client][]dependency
}

// set replaces cl's dependencies.
func (d *dependents) set(cl *mqtt.Client, deps []dependency) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.by == nil {
		d.by, d.keysOf = map[dependency]map[*mqtt.Client]struct{}{}, map[*mqtt.Client][]dependency{}
	}
	d.removeLocked(cl)
	for _, k := range deps {
		m := d.by[k]
		if m == nil {
			m = map[*mqtt.Client]struct{}{}
			d.by[k] = m
		}
		m[cl] = struct{}{}
	}
	d.keysOf[cl] = deps
}

func (d *dependents) remove(cl *mqtt.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(cl)
}

func (d *dependents) removeLocked(cl *mqtt.Client) {
	for _, k := range d.keysOf[cl] {
		if m := d.by[k]; m != nil {
			delete(m, cl)
			if len(m) == 0 {
				delete(d.by, k)
			}
		}
	}
	delete(d.keysOf, cl)
}

// of returns the sessions that depend on k.
func (d *dependents) of(k dependency) []*mqtt.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*mqtt.Client, 0, len(d.by[k]))
	for cl := range d.by[k] {
		out = append(out, cl)
	}
	return out
}

// dependenciesOf lists what a session depends on: its certificate's and
// CA's status (whether it is still admitted), and what its grant (nil when
// policies are not enforced) was read from: the certificate's attachments
// (which choose the policies and the thing), each policy, and the thing
// named by its client ID and the one it resolved to.
func dependenciesOf(sess *session, g *grant) []dependency {
	deps := []dependency{{sess.scope, registry.ChangeCertificate, sess.certificateID}}
	if sess.caID != "" {
		deps = append(deps, dependency{sess.scope, registry.ChangeCA, sess.caID})
	}
	if g == nil {
		return deps
	}
	deps = append(deps,
		dependency{sess.scope, registry.ChangePrincipal, sess.scope.CertificateARN(sess.certificateID)},
		dependency{sess.scope, registry.ChangeThing, sess.clientID})
	for _, name := range g.names {
		deps = append(deps, dependency{sess.scope, registry.ChangePolicy, name})
	}
	for _, name := range g.unparsable {
		deps = append(deps, dependency{sess.scope, registry.ChangePolicy, name})
	}
	if g.thing != nil && g.thing.Name != sess.clientID {
		deps = append(deps, dependency{sess.scope, registry.ChangeThing, g.thing.Name})
	}
	return deps
}
