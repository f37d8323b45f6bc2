// Package archtest enforces the direction of dependencies described in
// ARCHITECTURE.md, so that a wrong import fails the build's tests instead of
// slipping through review. It reads the module's packages with `go list`, so
// that what a package reaches through its dependencies counts as much as
// what it imports itself.
package archtest

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/fleetca/fleetca/"

// layer ranks the packages: a package may import only packages of a lower
// layer (never its own layer, never a higher one), so that dependencies point
// one way and no change can make a cycle.
var layer = map[string]int{
	"internal/iot":             0,
	"internal/apierr":          0,
	"internal/pki":             1,
	"internal/policy":          1,
	"internal/template":        1,
	"internal/keys":            1,
	"internal/audit":           1,
	"internal/keys/token":      2,
	"internal/store":           1,
	"internal/netlimit":        1,
	"internal/gcpace":          1,
	"internal/certlint":        1,
	"internal/config":          2,
	"internal/issuance":        2,
	"internal/store/sqlstore":  2,
	"internal/store/storetest": 2,
	"internal/sigv4":           2,
	"internal/provider":        2,
	"internal/telemetry":       2,
	"internal/testpki":         2,
	"internal/provider/lambda": 3,
	"internal/registry":        3,
	"internal/revocation":      3,
	"internal/pkiweb":          4,
	"internal/iotapi":          4,
	"internal/mqttapi":         4,
	"internal/server":          5,
	"internal/loadgen":         5,
	"cmd/fleetca":              6,
	"internal/archtest":        6,
	"internal/lambdatest":      6,
	"internal/lambdalocal":     3,
	"internal/pgtest":          6,
	"internal/hsmtest":         6,
	"internal/e2e/devicesdk":   6,
	// Examples are separate programs that show how to use fleetca.
	"examples/certificate-provider":        6,
	"examples/certificate-provider/signer": 5,
}

// rule says which packages may depend on pkg (itself or its subpackages),
// and why. A package may reach pkg through one of them (server reaches the
// SQL driver through sqlstore), never on its own, directly or through some
// other dependency.
type rule struct {
	pkg  string
	only []string
	why  string
	// direct limits the rule to imports: for standard-library packages
	// that libraries use for their own types (uuid implements
	// database/sql's Scanner), only who imports them counts.
	direct bool
}

var rules = []rule{
	{"database/sql", []string{"internal/store/sqlstore", "internal/pgtest"},
		"SQL lives behind the store's interfaces, so that the rules never depend on a database", true},
	{"modernc.org/sqlite", []string{"internal/store/sqlstore"}, "one place opens SQLite", false},
	{"github.com/jackc/pgx/v5", []string{"internal/store/sqlstore", "internal/pgtest"}, "one place opens PostgreSQL", false},
	{module + "internal/store/sqlstore", []string{"internal/server"}, "the composition root alone picks the store", false},
	{module + "internal/provider/lambda", []string{"internal/server"}, "the composition root alone picks the provider adapter", false},
	{"github.com/aws/aws-sdk-go-v2/service/lambda", []string{"internal/provider/lambda"}, "the Lambda client is an adapter's, behind provider.Signer", false},
	{module + "internal/lambdatest", nil, "test support: only tests run Lambda handlers", false},
	{"github.com/aws/aws-lambda-go/lambda", []string{"internal/lambdalocal", "examples/certificate-provider"}, "the Invoke API for local functions, and the example provider function", false},
	{module + "internal/lambdalocal", []string{"internal/lambdatest", "examples/certificate-provider"}, "test support and the example's local mode; fleetca itself only invokes functions", false},
	{module + "internal/pgtest", nil, "test support: only tests make throwaway schemas", false},
	{module + "internal/hsmtest", nil, "test support: only tests make throwaway SoftHSM tokens", false},
	{module + "internal/keys/token", []string{"internal/server"}, "the composition root alone opens the CA's token; issuance sees only its Token interface", false},
	{"github.com/ThalesGroup/crypto11", []string{"internal/keys/token"}, "one place speaks PKCS#11", false},
	{"github.com/miekg/pkcs11", []string{"internal/keys/token"}, "one place speaks PKCS#11", false},
	{module + "internal/testpki", nil, "test support: only tests make throwaway CAs and keys", false},
	{"github.com/mochi-mqtt/server/v2", []string{"internal/mqttapi"}, "the broker is the MQTT front end's", false},
	{module + "internal/mqttapi", []string{"internal/server"}, "front ends are composed by server alone", false},
	{module + "internal/iotapi", []string{"internal/server"}, "front ends are composed by server alone", false},
	{module + "internal/pkiweb", []string{"internal/server"}, "front ends are composed by server alone", false},
	{"github.com/zmap/zlint/v3", []string{"internal/certlint"}, "one place lints; issuance lints through its Linter port before the CA key signs", false},
	{module + "internal/certlint", []string{"internal/server"}, "the composition root alone picks the linter", false},
	{"golang.org/x/crypto/ocsp", []string{"internal/issuance", "internal/revocation", "internal/certlint"}, "OCSP answers are signed in issuance and made in revocation (certlint reaches the package inside zlint); the web front end only carries bytes", false},
	{"github.com/prometheus/client_golang/prometheus", []string{"internal/telemetry"}, "metrics live behind the observer interfaces each layer declares", false},
	{module + "internal/telemetry", []string{"internal/server"}, "nothing below server knows how it is observed, only that it is", false},
	{"github.com/eclipse/paho.mqtt.golang", []string{"internal/loadgen"}, "an MQTT client is for tests and the load generator (fleetca bench), never for the server", false},
	{"github.com/eclipse/paho.golang/paho", nil, "an MQTT 5 client is for tests, never for the server", false},
}

// domain lists the packages below the front ends and adapters: they hold the
// rules and must not know HTTP or MQTT, so that a rule is the same whichever
// front end asks.
var domain = []string{
	"internal/iot", "internal/apierr", "internal/pki", "internal/policy", "internal/template", "internal/keys", "internal/audit", "internal/store",
	"internal/issuance", "internal/provider", "internal/registry", "internal/config", "internal/revocation",
}

// wireLibraries are what only front ends and adapters may reach.
var wireLibraries = []string{"net/http", "github.com/mochi-mqtt/server/v2", "github.com/eclipse/paho.mqtt.golang", "github.com/eclipse/paho.golang/paho"}

// backgroundAllowed may call context.Background: the program's entry, the
// composition root, and test support. Everything else works on a context
// it is given, so that shutdown and deadlines reach it.
var backgroundAllowed = []string{"cmd/fleetca", "internal/server", "internal/lambdatest", "internal/pgtest", "internal/archtest", "examples/certificate-provider"}

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

var (
	listOnce sync.Once
	listed   map[string]*pkg // by path relative to the module
	listErr  error
)

func goList(args ...string) ([]*pkg, error) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-json"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &listError{err, stderr.String()}
	}
	var pkgs []*pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); err == io.EOF {
			return pkgs, nil
		} else if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
}

type listError struct {
	err    error
	stderr string
}

func (e *listError) Error() string { return "go list: " + e.err.Error() + ": " + e.stderr }

func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	listOnce.Do(func() {
		var pkgs []*pkg
		pkgs, listErr = goList("./...")
		listed = map[string]*pkg{}
		for _, p := range pkgs {
			listed[strings.TrimPrefix(p.ImportPath, module)] = p
		}
	})
	if listErr != nil {
		t.Fatal(listErr)
	}
	return listed
}

// under reports whether path is p or one of its subpackages.
func under(path, p string) bool { return path == p || strings.HasPrefix(path, p+"/") }

func TestDependenciesPointDown(t *testing.T) {
	t.Parallel()
	for rel, p := range packages(t) {
		rank, ok := layer[rel]
		if !ok {
			t.Errorf("%s has no layer in archtest; add it and to ARCHITECTURE.md", rel)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				if (rel == "internal/iot" || rel == "internal/apierr") && strings.Contains(strings.Split(imp, "/")[0], ".") {
					t.Errorf("%s must import only the standard library, not %s: it is the vocabulary every layer shares", rel, imp)
				}
				continue
			}
			target := strings.TrimPrefix(imp, module)
			if layer[target] >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies must point down", rel, rank, target, layer[target])
			}
		}
	}
}

func TestRestrictedPackages(t *testing.T) {
	t.Parallel()
	pkgs := packages(t)
	for rel, p := range pkgs {
		for _, r := range rules {
			if slices.Contains(r.only, rel) {
				continue
			}
			deps := p.Deps
			if r.direct {
				deps = p.Imports
			}
			for _, dep := range deps {
				if !under(dep, r.pkg) || throughAllowed(p, r) {
					continue
				}
				how := "through its dependencies"
				if slices.Contains(p.Imports, dep) {
					how = "directly"
				}
				t.Errorf("%s reaches %s %s; only %v may (%s)", rel, dep, how, r.only, r.why)
				break
			}
		}
		if slices.Contains(domain, rel) {
			for _, dep := range p.Deps {
				for _, wire := range wireLibraries {
					if under(dep, wire) {
						t.Errorf("%s is below the front ends and must not reach %s", rel, dep)
					}
				}
			}
		}
	}
}

// throughAllowed reports whether p reaches r's package through a package the
// rule allows.
func throughAllowed(p *pkg, r rule) bool {
	for _, a := range r.only {
		if slices.Contains(p.Deps, module+a) {
			return true
		}
	}
	return false
}

// TestRulesNameRealPackages: a rule about a package that is in neither the
// standard library nor the module graph can never match, and hides the rule
// that was meant (a ban on github.com/eclipse/paho.golang while the module
// uses paho.mqtt.golang).
func TestRulesNameRealPackages(t *testing.T) {
	t.Parallel()
	var names []string
	for _, r := range rules {
		names = append(names, r.pkg)
	}
	names = append(names, wireLibraries...)
	pkgs, err := goList(names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Error != nil {
			t.Errorf("archtest names %s, which is not in the module graph: %s", p.ImportPath, p.Error.Err)
		}
	}
	for rel := range layer {
		if _, ok := packages(t)[rel]; !ok {
			t.Errorf("archtest ranks %s, which no longer exists", rel)
		}
	}
}

// TestNoBackgroundContext: below the composition root, work runs on a
// context it was given, so that shutdown and deadlines reach it.
func TestNoBackgroundContext(t *testing.T) {
	t.Parallel()
	for rel, p := range packages(t) {
		if slices.Contains(backgroundAllowed, rel) {
			continue
		}
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "context" && (sel.Sel.Name == "Background" || sel.Sel.Name == "TODO") {
					t.Errorf("%s/%s calls context.%s; take a context from the caller instead", rel, name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}
