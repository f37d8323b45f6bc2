// Command fleetca is a self-hosted certificate authority and certificate
// registry for IoT fleets that speaks the AWS IoT Core certificate API.
//
//	fleetca serve [flags]                     run the server
//	fleetca account create [--account-id ID]  add an account and print its key pair
//	fleetca account add-key --account-id ID   add a key pair to an account
//	fleetca account list                      list the accounts and their access key IDs
//	fleetca ca seal                           seal the CA key files with the passphrase
//	fleetca ca import-key                     move the CA key files into a PKCS#11 token
//	fleetca ca rotate                         make a new issuing CA under the same root
//	fleetca backup --out FILE                 back up the data directory, while the server runs
//	fleetca restore --from FILE [--force]     restore a backup into the data directory
//	fleetca bench [flags]                     drive an AWS IoT endpoint and measure it
//	fleetca crl export --out FILE             write the server's current CRLs to a file
//	fleetca version                           print the version
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/gcpace"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/loadgen"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/server"
)

// version is set with -ldflags "-X main.version=..." by release builds.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "account":
		return account(args[1:], stdout, stderr)
	case "ca":
		return ca(args[1:], stdout, stderr)
	case "backup":
		return backup(args[1:], stdout, stderr)
	case "restore":
		return restore(args[1:], stdout, stderr)
	case "bench":
		return bench(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(args[1:], stderr)
	case "crl":
		return crl(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "fleetca", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "fleetca: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `fleetca: a certificate authority and registry for IoT fleets, speaking the AWS IoT certificate API.

Usage:
  fleetca serve [flags]                       run the server (fleetca serve -h lists the flags)
  fleetca account create [--account-id ID]    add an account and print its access key pair
  fleetca account add-key --account-id ID     add an access key pair to an account
  fleetca account list                        list the accounts and their access key IDs
  fleetca ca seal                             seal the CA key files with FLEETCA_CA_KEY_PASSPHRASE (server stopped)
  fleetca ca import-key --ca-key-uri URI      move the CA key files into a PKCS#11 token (server stopped)
  fleetca ca rotate                           make a new issuing CA under the same root (SQLite: server stopped; PostgreSQL: replicas follow)
  fleetca backup --out FILE                   back up the data directory (database, CA, credentials), while the server runs
  fleetca restore --from FILE [--force]       restore a backup into the data directory (--force moves a non-empty one aside)
  fleetca bench [flags]                       drive an AWS IoT endpoint and measure it (fleetca bench -h)
  fleetca crl export --out FILE [--url URL]   write the server's current CRLs (PEM) to FILE, for brokers that read a file
  fleetca crl export --ca-certificate-id ID --out FILE
                                              list a registered CA's unusable certificates as an OpenSSL index.txt
  fleetca healthcheck [--url URL]             exit 0 if the server answers /healthz (for container health checks)
  fleetca version (or --version)              print the version

The account, backup and restore commands take --data-dir too; account and backup work whether or not the server runs.
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// serveGC paces the server's collector unless the environment sets GOGC.
// Signing, the live heap is small (tens of MiB) while every request
// allocates, so Go's default of 100 collects many times a second under load;
// 400 trades some heap headroom for about 8 % less CPU per signed
// certificate (BENCHMARKS.md). Holding a fleet of idle device connections,
// the live heap is large and hardly grows; there the headroom is capped at
// 64 MiB (down to 25 %), or resident memory would grow to five times what the
// connections hold.
var serveGC = gcpace.Config{MaxPercent: 400, MinPercent: 25, Headroom: 64 << 20}

func serve(args []string, stderr io.Writer) int {
	cfg := config.FromEnv()
	fs := flag.NewFlagSet("fleetca serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetca serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "fleetca: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOGC") == "" {
		go gcpace.Run(ctx, serveGC, time.Second)
	}
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot listen", "err", err)
		srv.Shutdown(context.Background())
		return 1
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests in flight")
	case <-srv.Stopped():
		log.Error("server stopped", "err", srv.Err())
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func account(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "add-key" && args[0] != "list") {
		fmt.Fprintln(stderr, "fleetca: usage: fleetca account create|add-key|list [--data-dir DIR] [--database URL] [--account-id ID]")
		return 2
	}
	verb := args[0]
	var accountID, database string
	cfg, code, ok := dataDirFlags("account "+verb, args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&database, "database", os.Getenv("FLEETCA_DATABASE_URL"), "PostgreSQL URL of the servers, if they use one (FLEETCA_DATABASE_URL)")
		if verb != "list" {
			fs.StringVar(&accountID, "account-id", "", "12-digit account ID (random for create when empty)")
		}
	})
	if !ok {
		return code
	}
	cfg.Database = database
	if verb == "add-key" && accountID == "" {
		fmt.Fprintln(stderr, "fleetca: add-key needs --account-id")
		return 2
	}
	if _, err := os.Stat(cfg.DatabasePath()); err != nil && cfg.Database == "" {
		fmt.Fprintf(stderr, "fleetca: no fleetca database in %s (start the server there once first): %v\n", cfg.DataDir, err)
		return 1
	}
	var cred *registry.Credential
	var accounts []registry.AccountSummary
	ctx := context.Background()
	err := server.Admin(ctx, cfg, func(reg *registry.Service) error {
		var err error
		switch verb {
		case "list":
			accounts, err = reg.Accounts(ctx)
		case "add-key":
			cred, err = reg.CreateAccessKey(ctx, accountID)
		default:
			id := accountID
			if id == "" {
				if id, err = registry.RandomAccountID(); err != nil {
					return err
				}
			}
			cred, err = reg.CreateAccount(ctx, id)
		}
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "fleetca: %v\n", err)
		return 1
	}
	if verb == "list" {
		for _, a := range accounts {
			fmt.Fprintf(stdout, "%s\tcreated %s\taccess keys %s\n", a.ID, a.CreatedAt.UTC().Format(time.RFC3339), strings.Join(a.AccessKeyIDs, ","))
		}
		return 0
	}
	// The secret goes to the operator's terminal once, like aws iam
	// create-access-key. Each key gets a profile of its own, so pasting a
	// second key of an account does not overwrite the first's section.
	profile := "fleetca-" + cred.AccountID
	if verb == "add-key" {
		profile += "-" + strings.ToLower(cred.AccessKeyID[max(0, len(cred.AccessKeyID)-6):])
	}
	fmt.Fprintf(stdout, "# fleetca account %s\n[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		cred.AccountID, profile, cred.AccessKeyID, cred.SecretAccessKey)
	return 0
}

// dataDirFlags parses the flags of an operator command that works on a data
// directory; positional arguments are errors.
func dataDirFlags(name string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (config.Config, int, bool) {
	cfg := config.FromEnv()
	fs := flag.NewFlagSet("fleetca "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory of the server (FLEETCA_DATA_DIR)")
	define(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0, false
		}
		return cfg, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetca %s: unexpected argument %q\n", name, fs.Arg(0))
		return cfg, 2, false
	}
	return cfg, 0, true
}

const caUsage = `fleetca: usage: fleetca ca seal [--data-dir DIR] [--ca-key-passphrase-file FILE] (or FLEETCA_CA_KEY_PASSPHRASE)
       fleetca ca import-key [--data-dir DIR] --ca-key-uri URI [--ca-key-passphrase-file FILE] (PIN: the URI's pin-source or FLEETCA_CA_KEY_PIN)
       fleetca ca rotate [--data-dir DIR | --database URL] [--ca-key-uri URI] [--ca-key-passphrase-file FILE] [--audit-log FILE]`

func ca(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "seal" && args[0] != "import-key" && args[0] != "rotate") {
		fmt.Fprintln(stderr, caUsage)
		return 2
	}
	switch args[0] {
	case "import-key":
		return caImportKey(args[1:], stdout, stderr)
	case "rotate":
		return caRotate(args[1:], stdout, stderr)
	}
	cfg, code, ok := caFlags("ca seal", args[1:], stderr, false, nil)
	if !ok {
		return code
	}
	sealed, err := server.SealCA(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca ca seal: %v\n", err)
		return 1
	}
	if len(sealed) == 0 {
		fmt.Fprintf(stdout, "the CA keys in %s are sealed already\n", cfg.CADir())
		return 0
	}
	fmt.Fprintf(stdout, "sealed %s in %s; start the server with the same passphrase from now on\n", strings.Join(sealed, ", "), cfg.CADir())
	return 0
}

// caFlags parses the flags of a ca subcommand: the data directory, the
// file holding the passphrase of sealed keys, with withURI the token's
// URI, and whatever more defines.
func caFlags(name string, args []string, stderr io.Writer, withURI bool, more func(*flag.FlagSet)) (config.Config, int, bool) {
	var passphraseFile, uri string
	cfg, code, ok := dataDirFlags(name, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&passphraseFile, "ca-key-passphrase-file", os.Getenv("FLEETCA_CA_KEY_PASSPHRASE_FILE"), "file holding the passphrase of sealed keys (or set FLEETCA_CA_KEY_PASSPHRASE)")
		if withURI {
			fs.StringVar(&uri, "ca-key-uri", os.Getenv("FLEETCA_CA_KEY_URI"), "PKCS#11 URI of the token that keeps the CA keys (FLEETCA_CA_KEY_URI)")
		}
		if more != nil {
			more(fs)
		}
	})
	if !ok {
		return cfg, code, false
	}
	cfg.CAKeyURI = uri
	if cfg.CAKeyPassphraseFile = passphraseFile; passphraseFile != "" {
		cfg.CAKeyPassphrase = ""
	}
	return cfg, 0, true
}

func caImportKey(args []string, stdout, stderr io.Writer) int {
	cfg, code, ok := caFlags("ca import-key", args, stderr, true, nil)
	if !ok {
		return code
	}
	removed, err := server.ImportCAKeys(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca ca import-key: %v\n", err)
		return 1
	}
	if len(removed) == 0 {
		fmt.Fprintf(stdout, "the CA keys of %s are in the token already\n", cfg.CADir())
		return 0
	}
	fmt.Fprintf(stdout, "moved %s from %s into the token; start the server with --ca-key-uri from now on\n", strings.Join(removed, ", "), cfg.CADir())
	return 0
}

func caRotate(args []string, stdout, stderr io.Writer) int {
	var database, auditLog string
	cfg, code, ok := caFlags("ca rotate", args, stderr, true, func(fs *flag.FlagSet) {
		fs.StringVar(&database, "database", os.Getenv("FLEETCA_DATABASE_URL"), "PostgreSQL URL of the replicas' database (FLEETCA_DATABASE_URL); empty: the data directory's CA")
		fs.StringVar(&auditLog, "audit-log", os.Getenv("FLEETCA_AUDIT_LOG"), "audit file to append the new issuing CA's record to (FLEETCA_AUDIT_LOG)")
	})
	if !ok {
		return code
	}
	cfg.Database, cfg.AuditLog = database, auditLog
	log := slog.New(slog.NewTextHandler(stderr, nil))
	made, err := server.RotateCA(context.Background(), cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca ca rotate: %v\n", err)
		return 1
	}
	if cfg.Database != "" {
		fmt.Fprintf(stdout, "made the issuing CA %q; the replicas sign with it within seconds\n", made.Subject.CommonName)
	} else {
		fmt.Fprintf(stdout, "made the issuing CA %q in %s; the server signs with it from its next start\n", made.Subject.CommonName, cfg.CADir())
	}
	return 0
}

func backup(args []string, stdout, stderr io.Writer) int {
	var out string
	cfg, code, ok := dataDirFlags("backup", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "file to write (must not exist); it holds the CA keys: keep it as safe as the data directory")
	})
	if !ok {
		return code
	}
	if out == "" {
		fmt.Fprintln(stderr, "fleetca backup: --out is required")
		return 2
	}
	sum, err := server.Backup(context.Background(), cfg, out)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %s (database %d bytes)\n", cfg.DataDir, out, strings.Join(sum.Files, ", "), sum.DatabaseBytes)
	return 0
}

func restore(args []string, stdout, stderr io.Writer) int {
	var from string
	var force bool
	cfg, code, ok := dataDirFlags("restore", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "backup file written by fleetca backup")
		fs.BoolVar(&force, "force", false, "restore over a non-empty data directory, which is moved aside, not deleted")
	})
	if !ok {
		return code
	}
	if from == "" {
		fmt.Fprintln(stderr, "fleetca restore: --from is required")
		return 2
	}
	replaced, err := server.Restore(context.Background(), cfg, from, force)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca restore: %v\n", err)
		if replaced != "" {
			fmt.Fprintf(stderr, "fleetca restore: the directory that was there is now %s\n", replaced)
		}
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", from, cfg.DataDir)
	if replaced != "" {
		fmt.Fprintf(stdout, "the directory that was there is now %s\n", replaced)
	}
	return 0
}

// healthcheck asks a local server's /healthz, for container health checks
// in images that have no shell or curl.
func healthcheck(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleetca healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.FromEnv()
	url := fs.String("url", healthURL(cfg), "the server's health URL (default: from FLEETCA_API_ADDR and FLEETCA_TLS_CERT)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// A liveness probe of the local process: the API's certificate names
	// the service, not the loopback address it is reached at here.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "fleetca healthcheck: %s answered %s\n", *url, resp.Status)
		return 1
	}
	return 0
}

// healthURL is the local server's /healthz: its API address, the
// unspecified host (all interfaces) reached on loopback, over HTTPS when it
// serves TLS.
func healthURL(cfg config.Config) string {
	host, port, err := net.SplitHostPort(cfg.APIAddr)
	if err != nil {
		return "http://" + cfg.APIAddr + "/healthz"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
}

// benchAccount makes an account with a key pair in a local fleetca's data
// directory, for one bench run.
func benchAccount(dataDir string) (*registry.Credential, error) {
	cfg := config.FromEnv()
	cfg.DataDir = dataDir
	if _, err := os.Stat(cfg.DatabasePath()); err != nil && cfg.Database == "" {
		return nil, fmt.Errorf("no fleetca database there: %w", err)
	}
	var cred *registry.Credential
	err := server.Admin(context.Background(), cfg, func(reg *registry.Service) error {
		id, err := registry.RandomAccountID()
		if err != nil {
			return err
		}
		cred, err = reg.CreateAccount(context.Background(), id)
		return err
	})
	return cred, err
}

func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleetca bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "http://127.0.0.1:7400", "AWS IoT endpoint to drive (credentials: the standard AWS sources)")
	region := fs.String("region", "us-east-1", "region to sign for")
	op := fs.String("op", "csr", "operation: "+strings.Join(loadgen.Operations, ", ")+", or idle (hold --devices connections for --duration; needs --server-pid)")
	concurrency := fs.Int("concurrency", 32, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to run (at most 1h)")
	count := fs.Int("count", 0, "stop after this many requests (0: run for --duration)")
	csrKey := fs.String("csr-key", "rsa-2048", "key of the CSRs: rsa-2048 or p256")
	caKey := fs.String("ca-key", "p256", "key of the server's issuing CA, which the raw cost signs with: p256 or rsa-2048")
	rawKeyURI := fs.String("raw-key-uri", "", "PKCS#11 URI of the server's token (PIN: its pin-source or FLEETCA_CA_KEY_PIN): the raw cost signs with a --ca-key key made there for the run, as a server with --ca-key-uri does")
	pid := fs.Int("server-pid", 0, "PID of a local server, to read its CPU time from /proc")
	metricsURL := fs.String("metrics-url", "", "Prometheus endpoint of the server (e.g. http://127.0.0.1:7400/metrics), to read its CPU time")
	dataDir := fs.String("data-dir", "", "data directory of a local fleetca: bench makes an account of its own there for the run and writes only into it")
	profile := fs.String("profile", "", "AWS profile whose credentials sign the requests (default: the standard AWS sources)")
	mqttAddr := fs.String("mqtt-addr", "127.0.0.1:8883", "device endpoint that --op provision and --op connect drive (its CA is read from the endpoint's /ca.pem)")
	devices := fs.Int("devices", loadgen.DefaultDevices, "device certificates --op connect and --op idle make beforehand and connect with")
	mqttName := fs.String("mqtt-server-name", "localhost", "name the device endpoint's certificate is checked for")
	peers := fs.String("peers", "", "comma-separated peers to measure beside fleetca in the same run: cfssl with --op csr; bare-tls and mosquitto, with the same devices, with --op connect or idle ("+strings.Join(loadgen.Peers, ", ")+")")
	rounds := fs.Int("rounds", 1, "with --peers: how many times to measure fleetca and each peer in turn")
	keepalive := fs.Duration("keepalive", 30*time.Second, "keep-alive interval of --op idle's devices")
	serveBareTLS := fs.String("serve-bare-tls", "", "serve the bare-tls peer at this address with the files in --peer-dir, until interrupted (bench starts it itself for --peers)")
	peerDir := fs.String("peer-dir", "", "directory of the bare-tls peer's files (with --serve-bare-tls)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetca bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *serveBareTLS != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := loadgen.ServeBareTLS(ctx, *serveBareTLS, *peerDir); err != nil {
			fmt.Fprintf(stderr, "fleetca bench: bare-tls peer: %v\n", err)
			return 1
		}
		return 0
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(*region)}
	switch {
	case *dataDir != "" && *profile != "":
		fmt.Fprintln(stderr, "fleetca bench: give --data-dir or --profile, not both")
		return 2
	case *dataDir != "":
		cred, err := benchAccount(*dataDir)
		if err != nil {
			fmt.Fprintf(stderr, "fleetca bench: making an account in %s: %v\n", *dataDir, err)
			return 1
		}
		fmt.Fprintf(stderr, "fleetca bench: writing into account %s, made for this run\n", cred.AccountID)
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cred.AccessKeyID, cred.SecretAccessKey, "")))
	case *profile != "":
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(*profile))
		fmt.Fprintf(stderr, "fleetca bench: writing into the account of profile %s\n", *profile)
	default:
		fmt.Fprintln(stderr, "fleetca bench: writing into the account of the standard AWS credentials; --data-dir makes an account for the run instead")
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), loadOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca bench: %v\n", err)
		return 1
	}
	opts := loadgen.Options{
		Client:      iot.NewFromConfig(cfg, func(o *iot.Options) { o.BaseEndpoint = endpoint; o.RetryMaxAttempts = 1 }),
		Operation:   *op,
		Concurrency: *concurrency,
		Duration:    *duration,
		Count:       *count,
		CSRKey:      *csrKey,
		CAKey:       *caKey,
		Progress:    stderr,
	}
	if *count > 0 {
		opts.Duration = loadgen.MaxDuration
	}
	if *rawKeyURI != "" {
		alg := map[string]keys.Algorithm{"p256": keys.ECDSAP256, "rsa-2048": keys.RSA2048}[*caKey]
		signer, done, err := server.TokenBenchKey(*rawKeyURI, os.Getenv("FLEETCA_CA_KEY_PIN"), alg)
		if err != nil {
			fmt.Fprintf(stderr, "fleetca bench: --raw-key-uri: %v\n", err)
			return 1
		}
		defer done()
		opts.CASigner = signer
	}
	if *op == "provision" || *op == "connect" || *op == "idle" {
		roots, err := endpointRoots(*endpoint)
		if err != nil {
			fmt.Fprintf(stderr, "fleetca bench: %v\n", err)
			return 1
		}
		opts.MQTTAddr, opts.MQTTServerName, opts.RootCAs, opts.Devices = *mqttAddr, *mqttName, roots, *devices
		opts.Keepalive = *keepalive
	}
	switch {
	case *pid > 0:
		opts.ServerCPU = loadgen.ProcCPU(*pid)
	case *metricsURL != "":
		opts.ServerCPU = loadgen.MetricsCPU(*metricsURL)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *peers != "" {
		if *op != "connect" && *op != "idle" && *op != "csr" || *pid <= 0 || *rounds < 1 {
			fmt.Fprintln(stderr, "fleetca bench: --peers goes with --op csr, connect or idle, --server-pid and at least one round")
			return 2
		}
		return benchPeers(ctx, opts, *endpoint, *pid, strings.Split(*peers, ","), *rounds, stdout, stderr)
	}
	if *op == "idle" {
		return benchIdle(ctx, opts, *pid, stdout, stderr)
	}
	r, err := loadgen.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "fleetca bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s x %d clients: %d requests in %.1fs, %.0f/s, %d errors", r.Operation, r.Concurrency, r.Requests, r.Seconds, r.PerSecond, r.Errors)
	for code, n := range r.ErrorCodes {
		fmt.Fprintf(stdout, " %s:%d", code, n)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.P50ms, r.P90ms, r.P99ms, r.MaxMs)
	for _, st := range r.Steps {
		fmt.Fprintf(stdout, "  %-14s p50 %.2f  p99 %.2f\n", st.Name, st.P50ms, st.P99ms)
	}
	if r.RawCostMs > 0 {
		fmt.Fprintf(stdout, "raw crypto cost %.3f ms CPU", r.RawCostMs)
		if r.ServerCPUMs > 0 {
			fmt.Fprintf(stdout, "; server CPU %.3f ms per request; CPU ratio %.2f", r.ServerCPUMs, r.CPURatio)
		}
		fmt.Fprintf(stdout, "; load generator CPU %.3f ms per request", r.LoadCPUMs)
		fmt.Fprintln(stdout)
	}
	line, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(line))
	if r.Errors > 0 {
		return 1
	}
	return 0
}

// endpointRoots reads the CA certificate fleetca serves at /ca.pem, which
// signs its device endpoint's certificate.
func endpointRoots(endpoint string) (*x509.CertPool, error) {
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/ca.pem")
	if err != nil {
		return nil, fmt.Errorf("reading the endpoint's CA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the endpoint's CA: %s %v", resp.Status, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(body) {
		return nil, errors.New("the endpoint's /ca.pem holds no certificate")
	}
	return roots, nil
}

// benchIdle runs --op idle: the server's memory and CPU for a fleet of idle
// connections.
func benchIdle(ctx context.Context, opts loadgen.Options, pid int, stdout, stderr io.Writer) int {
	if pid <= 0 {
		fmt.Fprintln(stderr, "fleetca bench: --op idle needs --server-pid, to read the server's memory and CPU")
		return 2
	}
	opts.ServerCPU = loadgen.ProcCPU(pid)
	r, err := loadgen.Idle(ctx, opts, loadgen.ProcRSS(pid))
	if err != nil {
		fmt.Fprintf(stderr, "fleetca bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "idle x %d devices: connected in %.1fs, held %.0fs: %.1f KiB resident per connection (%.1f KiB at the end), %.2f %% of a core\n",
		r.Devices, r.ConnectSeconds, r.Seconds, r.RSSPerConnectionKiB, r.RSSPerConnectionEndKiB, r.IdleCPUPercent)
	line, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(line))
	return 0
}
