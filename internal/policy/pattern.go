package policy

import (
	"strings"
	"unicode/utf8"
)

// A pattern is a resource or condition value compiled to tokens: literal
// text, the wildcards * (any run of characters, / included) and ? (one
// character), and policy variables, resolved at each match.
type pattern []token

type tokenKind uint8

const (
	literal tokenKind = iota
	anyRun            // *
	oneChar           // ?
	variable
)

type token struct {
	kind tokenKind
	text string // literal text, or a variable's text as written
	key  Key
	// certificate variables resolve to nothing (and so match nothing)
	// when their value holds a wildcard or MQTT character, as AWS says.
	strict bool
}

// maxVariable is the longest value a certificate variable substitutes.
const maxVariable = 1024

// compile turns s into a pattern. With variables, ${...} names a policy
// variable and $(*), $(?), $($) write *, ? and $. With wildcards, * and ?
// are wildcards; without (the Equals operators), they are literal.
func compile(s string, variables, wildcards bool) pattern {
	var p pattern
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p = append(p, token{kind: literal, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case wildcards && c == '*':
			flush()
			if len(p) == 0 || p[len(p)-1].kind != anyRun { // ** is *
				p = append(p, token{kind: anyRun})
			}
			i++
		case wildcards && c == '?':
			flush()
			p = append(p, token{kind: oneChar})
			i++
		case variables && len(s) >= i+4 && s[i] == '$' && (s[i+1] == '(' && s[i+3] == ')' || s[i+1] == '{' && s[i+3] == '}') && strings.IndexByte("*?$", s[i+2]) >= 0:
			// $(*) as AWS IoT writes it, ${*} as IAM does.
			lit.WriteByte(s[i+2])
			i += 4
		case variables && strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				lit.WriteString(s[i:])
				i = len(s)
				continue
			}
			name := s[i+2 : i+end]
			if key, strict, ok := parseVariable(name); ok {
				flush()
				p = append(p, token{kind: variable, text: s[i : i+end+1], key: key, strict: strict})
			} else {
				// An unknown variable stays as written, so it matches
				// only itself, as AWS leaves it.
				lit.WriteString(s[i : i+end+1])
			}
			i += end + 1
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return p
}

// match reports whether s matches the pattern, variables resolved through
// ctx. It walks both, returning to the last * on a mismatch, as glob
// matching does (at worst the product of their lengths); nothing is
// allocated.
func (p pattern) match(s string, ctx Context) bool {
	ti, si := 0, 0
	star, starAt := -1, 0
	for {
		if ti < len(p) {
			t := &p[ti]
			switch t.kind {
			case anyRun:
				star, starAt = ti, si
				ti++
				continue
			case oneChar:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			case literal:
				if strings.HasPrefix(s[si:], t.text) {
					si += len(t.text)
					ti++
					continue
				}
			case variable:
				if v, ok := t.resolve(ctx); ok && strings.HasPrefix(s[si:], v) {
					si += len(v)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if star < 0 || starAt >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starAt:])
		starAt += n
		ti, si = star+1, starAt
	}
}

// equal reports whether s is exactly the pattern's text, variables
// resolved: the Equals operators' match, where * and ? are literal.
func (p pattern) equal(s string, ctx Context, fold bool) bool {
	for i := range p {
		t := &p[i]
		v := t.text
		if t.kind == variable {
			var ok bool
			if v, ok = t.resolve(ctx); !ok {
				return false
			}
		}
		if len(s) < len(v) || (fold && !strings.EqualFold(s[:len(v)], v)) || (!fold && s[:len(v)] != v) {
			return false
		}
		s = s[len(v):]
	}
	return s == ""
}

func (t *token) resolve(ctx Context) (string, bool) {
	if ctx == nil {
		return "", false
	}
	v, ok := ctx.Value(t.key)
	if !ok || (t.strict && (len(v) > maxVariable || strings.ContainsAny(v, "*$+?#"))) {
		return "", false
	}
	return v, true
}

// The variables fleetca resolves, by their lower-case spelling.
var knownVariables = map[string]string{}

func init() {
	for _, name := range []string{
		"iot:ClientId", "iot:DomainName", "aws:SourceIp",
		"iot:Connection.Thing.ThingName", "iot:Connection.Thing.ThingTypeName", "iot:Connection.Thing.IsAttached",
		"iot:Certificate.SerialNumber", "iot:ConnectAttributes", "iot:LastWillTopic",
	} {
		knownVariables[strings.ToLower(name)] = name
	}
}

// certificateAttributes are the name parts iot:Certificate.Subject.<A> and
// iot:Certificate.Issuer.<A> take.
var certificateAttributes = map[string]bool{
	"DistinguishedNameQualifier": true, "Country": true, "Organization": true, "OrganizationalUnit": true,
	"State": true, "CommonName": true, "SerialNumber": true, "Title": true, "Surname": true, "GivenName": true,
	"Initials": true, "Pseudonym": true, "GenerationQualifier": true,
	"AlternativeName.RFC822Name": true, "AlternativeName.DNSName": true, "AlternativeName.DirectoryName": true,
	"AlternativeName.UniformResourceIdentifier": true, "AlternativeName.IPAddress": true,
}

// parseVariable reads a variable name (or condition key): its canonical
// key, and whether it is a certificate variable (strict substitution).
func parseVariable(name string) (Key, bool, bool) {
	if canonical, ok := knownVariables[strings.ToLower(name)]; ok {
		return Key{Name: canonical}, false, true
	}
	const attributes = "iot:Connection.Thing.Attributes["
	if len(name) > len(attributes)+1 && strings.EqualFold(name[:len(attributes)], attributes) && name[len(name)-1] == ']' {
		return Key{Name: "iot:Connection.Thing.Attributes", Arg: name[len(attributes) : len(name)-1]}, false, true
	}
	for _, part := range []string{"iot:Certificate.Subject.", "iot:Certificate.Issuer."} {
		if len(name) <= len(part) || !strings.EqualFold(name[:len(part)], part) {
			continue
		}
		attr, arg := name[len(part):], ""
		if i := strings.LastIndexByte(attr, '.'); i > 0 && !certificateAttributes[attr] {
			attr, arg = attr[:i], attr[i+1:]
			if arg != "List" && !digits(arg) {
				return Key{}, false, false
			}
		}
		if !certificateAttributes[attr] {
			return Key{}, false, false
		}
		return Key{Name: part + attr, Arg: arg}, true, true
	}
	return Key{}, false, false
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
