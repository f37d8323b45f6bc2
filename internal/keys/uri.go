package keys

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// TokenURI names a PKCS#11 token and the CA's keys in it: what fleetca
// reads of a PKCS#11 URI (RFC 7512). Package keys/token opens it.
type TokenURI struct {
	// ModulePath is the PKCS#11 library (module-path).
	ModulePath string
	// The token: by label (token), serial number (serial) or slot (slot-id);
	// exactly one.
	TokenLabel  string
	TokenSerial string
	SlotID      *int
	// Object prefixes the labels of the CA's keys: "<object> root",
	// "<object> issuing", "<object> server-ca". Default "fleetca".
	Object string
	// PINSource is the file holding the user PIN (pin-source=file:...);
	// empty means the PIN comes from the environment.
	PINSource string
}

// DefaultObject is the label prefix of the CA's keys when the URI names none.
const DefaultObject = "fleetca"

// maxURIBytes bounds a URI: a name of a module and a token, not a document.
const maxURIBytes = 4096

// ParseTokenURI reads a PKCS#11 URI of the form
//
//	pkcs11:token=fleetca;object=fleetca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/fleetca/pin
//
// Attributes fleetca would not honour are refused rather than ignored, so a
// typo cannot select another token than the one meant; so is pin-value: a
// PIN in a URI ends up in command lines and process listings.
func ParseTokenURI(s string) (TokenURI, error) {
	var u TokenURI
	if len(s) > maxURIBytes {
		return u, fmt.Errorf("the PKCS#11 URI has %d bytes; at most %d are allowed", len(s), maxURIBytes)
	}
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return u, errors.New(`a PKCS#11 URI starts with "pkcs11:"`)
	}
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	attr := func(part string) (string, string, error) {
		name, value, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return "", "", fmt.Errorf("the PKCS#11 URI attribute %q is not name=value", part)
		}
		if seen[name] {
			return "", "", fmt.Errorf("the PKCS#11 URI names %s twice", name)
		}
		seen[name] = true
		v, err := url.PathUnescape(value)
		if err != nil {
			return "", "", fmt.Errorf("the PKCS#11 URI attribute %s is not percent-encoded properly", name)
		}
		return name, v, nil
	}
	if path != "" {
		for _, part := range strings.Split(path, ";") {
			name, v, err := attr(part)
			if err != nil {
				return u, err
			}
			switch name {
			case "token":
				u.TokenLabel = v
			case "serial":
				u.TokenSerial = v
			case "slot-id":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return u, fmt.Errorf("the PKCS#11 URI's slot-id %q is not a slot number", v)
				}
				u.SlotID = &n
			case "object":
				u.Object = v
			default:
				return u, fmt.Errorf("the PKCS#11 URI attribute %s is not one fleetca uses (token, serial, slot-id, object)", name)
			}
		}
	}
	if query != "" {
		for _, part := range strings.Split(query, "&") {
			name, v, err := attr(part)
			if err != nil {
				return u, err
			}
			switch name {
			case "module-path":
				u.ModulePath = v
			case "pin-source":
				file, ok := strings.CutPrefix(v, "file:")
				if !ok || file == "" {
					return u, fmt.Errorf("the PKCS#11 URI's pin-source must be file:<path>, not %q", v)
				}
				u.PINSource = file
			case "pin-value":
				return u, errors.New("the PKCS#11 URI must not carry the PIN (pin-value): give it in a file (pin-source=file:...) or in FLEETCA_CA_KEY_PIN")
			default:
				return u, fmt.Errorf("the PKCS#11 URI query attribute %s is not one fleetca uses (module-path, pin-source)", name)
			}
		}
	}
	if u.ModulePath == "" {
		return u, errors.New("the PKCS#11 URI must name the token's library: ?module-path=/path/to/module.so")
	}
	selectors := 0
	for _, set := range []bool{u.TokenLabel != "", u.TokenSerial != "", u.SlotID != nil} {
		if set {
			selectors++
		}
	}
	if selectors != 1 {
		return u, errors.New("the PKCS#11 URI must name its token in exactly one way: token=<label>, serial=<serial> or slot-id=<n>")
	}
	if u.Object == "" {
		u.Object = DefaultObject
	}
	return u, nil
}

// PIN reads the user PIN: from the URI's pin-source file (without a final
// line break), or else env, the value of FLEETCA_CA_KEY_PIN.
func (u TokenURI) PIN(env string) (string, error) {
	if u.PINSource == "" {
		if env == "" {
			return "", errors.New("the PKCS#11 token's PIN is not given: set FLEETCA_CA_KEY_PIN or pin-source=file:<path> in the URI")
		}
		return env, nil
	}
	data, err := os.ReadFile(u.PINSource)
	if err != nil {
		return "", fmt.Errorf("reading the PKCS#11 PIN: %w", err)
	}
	pin := strings.TrimRight(string(data), "\r\n")
	if pin == "" {
		return "", fmt.Errorf("the PKCS#11 PIN file %s is empty", u.PINSource)
	}
	return pin, nil
}

// Label is the label of the CA key with the role (root, issuing,
// server-ca).
func (u TokenURI) Label(role string) string { return u.Object + " " + role }
