// Package server is fleetca's composition root: from a Config it opens the
// store, the CA and the registry, wires the front ends, and runs them. It is
// the only package that imports the adapters.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/certlint"
	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/iotapi"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/keys/token"
	"github.com/fleetca/fleetca/internal/mqttapi"
	"github.com/fleetca/fleetca/internal/pkiweb"
	"github.com/fleetca/fleetca/internal/provider/lambda"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/revocation"
	"github.com/fleetca/fleetca/internal/sigv4"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
	"github.com/fleetca/fleetca/internal/telemetry"
)

// Server is a running fleetca.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	store     *sqlstore.Store
	authority *issuance.Authority
	registry  *registry.Service
	http      *http.Server
	listener  net.Listener
	mqtt      *mqttapi.Server
	debug     *http.Server // the profiler, when DebugAddr is set
	debugAddr string
	keyPool   *issuance.KeyPool // nil unless --key-pool
	token     *token.Token      // the CA keys' PKCS#11 token; nil unless --ca-key-uri
	audit     *audit.Log        // records every signature
	// revocation keeps the CRL and answers OCSP; Start runs its refresh
	// loops until Shutdown calls stopRevocation and waits for revocationWG.
	// With PostgreSQL, followRotations adds a service for each issuing CA
	// another process rotated in.
	revocation     *revocation.Set
	revOpts        revocation.Options
	revCtx         context.Context
	stopRevocation context.CancelFunc
	revocationWG   sync.WaitGroup
	// caKeys opens the keys of issuing CAs rotated in while running;
	// rotationErr is why the last try to take one up failed, if it did.
	caKeys      issuance.Options
	rotationErr atomic.Pointer[error]
	// lock is the data directory's lock file, held while the server lives
	// (SQLite only; see lockDataDir).
	lock *os.File
	// apiConnections bounds the API's open connections.
	apiConnections int
	// watchStop ends watchHealth, which closes watchDone.
	watchStop, watchDone chan struct{}
	// AccountID is the default account.
	AccountID string
	served    chan struct{} // closed when the HTTP server has stopped
	serveErr  error         // why it stopped; read after served is closed
}

// New opens (on first start, creates) everything cfg describes. It does not
// listen yet; Start does.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	// The directory holds keys and secrets: nobody else may look inside.
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	passphrase, err := cfg.Passphrase()
	if err != nil {
		return nil, fmt.Errorf("CA key passphrase: %w", err)
	}
	var lock *os.File
	if cfg.Database == "" {
		// One server per SQLite data directory. PostgreSQL replicas share
		// their database by design and keep nothing in the directory
		// that two of them could not share.
		if lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				lock.Close()
			}
		}()
	}
	caKeys := issuance.Options{Algorithm: keys.Algorithm(cfg.CAKeyAlgorithm), Passphrase: passphrase}
	tok, err := openToken(cfg)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		caKeys.Token = tok
		defer func() {
			if err != nil {
				tok.Close()
			}
		}()
	}
	metrics := telemetry.New()
	// The API counts the requests it is serving; the store's writer reads
	// the count to decide when to gather writes into one commit.
	serving := new(atomic.Int64)
	st, authority, err := openStoreAndCA(ctx, cfg, caKeys, log,
		sqlstore.WithWriteTimeout(cfg.DatabaseTimeout),
		sqlstore.WithCommitObserver(metrics.ObserveCommit),
		sqlstore.WithLoad(func() int { return int(serving.Load()) }))
	if err != nil {
		return nil, err
	}
	if authority, err = authority.WithPublicURL(cfg.PublicURL); err != nil {
		st.Close()
		return nil, err
	}
	auditLog, err := audit.New(log.Handler(), cfg.AuditLog)
	if err != nil {
		st.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			auditLog.Close()
		}
	}()
	authority = authority.WithAuditor(auditLog)
	lintMode := issuance.LintEachProfile
	if cfg.LintEachCertificate {
		lintMode = issuance.LintEachCertificate
	}
	lints, err := certlint.New(false)
	if err != nil {
		st.Close()
		return nil, err
	}
	authority = authority.WithLinting(lints, lintMode, metrics)
	if err = authority.RecordCreation(audit.WithRequester(ctx, audit.Requester{Operation: "CreateCA"})); err != nil {
		st.Close()
		return nil, err
	}
	if cfg.PublicURL != "" && cfg.TLSCert != "" {
		log.Warn("certificates point at the CRL and OCSP over plain HTTP (--public-url), but this server serves HTTPS only: "+
			"put a plain-HTTP proxy in front of /crl and /ocsp at that URL", "public_url", cfg.PublicURL)
	}
	var keyPool *issuance.KeyPool
	defer func() {
		if err != nil {
			st.Close()
			if keyPool != nil {
				keyPool.Close()
			}
		}
	}()
	invoker, err := lambda.New(ctx, lambda.Options{Endpoint: cfg.LambdaEndpoint, Timeout: cfg.ProviderTimeout, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("certificate providers: %w", err)
	}
	crossAccount, err := cfg.ProviderCrossAccounts()
	if err != nil {
		return nil, err
	}
	regOpts := registry.Options{Store: st, Authority: authority, Auditor: auditLog, Signer: invoker, Hooks: invoker, CrossAccountProviders: crossAccount}
	box, err := secretBox(passphrase, authority.Root())
	if err != nil {
		return nil, err
	}
	if box != nil {
		regOpts.Secrets = box
	}
	if cfg.KeyPool > 0 {
		keyPool = issuance.NewKeyPool(cfg.KeyPool, nil)
		regOpts.NewDeviceKey = keyPool.Take
	}
	reg := registry.New(regOpts)
	if n, err := reg.SealStoredSecrets(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("sealed secret access keys stored in the clear", "keys", n)
	}
	revOpts := revocation.Options{
		Store: st, Logger: log, Observer: metrics,
		CRLRefresh: cfg.CRLRefresh, CRLValidity: cfg.CRLValidity, Poll: cfg.RevocationPoll,
	}
	// One service per issuing CA: those rotated away keep their CRL.
	rev := revocation.NewSet()
	for _, ca := range slices.Backward(authority.Issuers()) {
		svc, err := newRevocation(revOpts, authority, ca)
		if err != nil {
			return nil, err
		}
		rev.Add(svc)
	}
	// Certificates stored by a version that did not record issuers are
	// attributed first, so that the first CRL lists those already revoked.
	// They came from the first issuing CA: rotations came later.
	first := authority.Issuers()[len(authority.Issuers())-1]
	if n, err := revocation.Attribute(ctx, st, first, iot.CertificateID(first.Raw)); err != nil {
		return nil, fmt.Errorf("revocation: attributing certificates issued before this version: %w", err)
	} else if n > 0 {
		log.Info("revocation: recorded the issuer and serial of certificates issued before this version", "certificates", n)
	}
	// The CRL exists before anything is served, so that the first request
	// for it and every OCSP answer has a list to go by.
	for _, svc := range rev.Services() {
		if err := svc.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("revocation: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: log, store: st, authority: authority, registry: reg, keyPool: keyPool, lock: lock, revocation: rev, token: tok, audit: auditLog,
		revOpts: revOpts, caKeys: caKeys}
	if err := s.bootstrapAccount(ctx); err != nil {
		return nil, err
	}
	creds := credentialSource{reg: reg, envKeyID: cfg.AccessKeyID, envSecret: cfg.SecretAccessKey, defaultAccount: s.AccountID}
	burst := cfg.AccountBurst
	if burst == 0 {
		burst = int(cfg.AccountRate + 0.999)
	}
	api := iotapi.New(iotapi.Options{
		Registry:       reg,
		Verifier:       sigv4.NewVerifier(creds, nil, "iot", "execute-api"),
		Logger:         log,
		Observer:       metrics,
		MaxInFlight:    cfg.MaxInFlight,
		AccountRate:    cfg.AccountRate,
		AccountBurst:   burst,
		RequestTimeout: cfg.DatabaseTimeout + 5*time.Second,
		Serving:        serving,
		MQTTEndpoint:   cfg.DataEndpoint(),
	})
	budget := connectionBudget()
	if cfg.MQTTAddr != "" {
		cert, err := authority.IssueServerCertificate(audit.WithRequester(ctx, audit.Requester{Operation: "StartMQTTEndpoint"}), cfg.MQTTHostList())
		if err != nil {
			return nil, err
		}
		s.mqtt, err = mqttapi.New(context.WithoutCancel(ctx), mqttapi.Options{
			Addr: cfg.MQTTAddr, Certificate: cert, Registry: reg, Logger: log, Observer: metrics,
			MaxConnections:   budget.mqtt,
			ProvisioningRate: cfg.MQTTProvisioningRate, ProvisioningBurst: cfg.MQTTProvisioningBurst,
			WriteTimeout: cfg.MQTTWriteTimeout,
			ChangePoll:   cfg.ChangePoll, SkipPolicies: cfg.InsecureSkipPolicies,
		})
		if err != nil {
			return nil, fmt.Errorf("mqtt endpoint: %w", err)
		}
		metrics.WatchConnectedDevices(s.mqtt.Connected)
	}
	public := map[string]http.Handler{
		"/healthz":      http.HandlerFunc(s.health),
		"/readyz":       http.HandlerFunc(s.ready),
		"/ca.pem":       http.HandlerFunc(s.rootPEM),
		"/ca-chain.pem": http.HandlerFunc(s.chainPEM),
		"/metrics":      metrics.Handler(),
	}
	s.apiConnections = budget.api
	s.http = &http.Server{
		Handler:           routes(public, pkiweb.New(rev, nil), api),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// routes serves the public paths (GET or HEAD, no authentication), the
// CRLs and the OCSP responder (no authentication, as verifiers expect), and
// hands everything else to the API, which authenticates it. It is not a
// ServeMux: one would redirect a path that is not clean (//x, /./x) before
// the API could refuse it, showing strangers its routes.
func routes(public map[string]http.Handler, pki http.Handler, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := public[r.URL.Path]; ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			h.ServeHTTP(w, r)
			return
		}
		if pkiweb.Owns(r.URL.Path) {
			pki.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// openStoreAndCA opens the database and the CA. With SQLite the CA lives in
// the data directory; with PostgreSQL it lives, sealed, in the database, so
// every replica signs with the one CA that the first replica created.
func openStoreAndCA(ctx context.Context, cfg config.Config, caKeys issuance.Options, log *slog.Logger, opts ...sqlstore.Option) (*sqlstore.Store, *issuance.Authority, error) {
	if cfg.Database == "" {
		st, err := sqlstore.OpenSQLite(ctx, cfg.DatabasePath(), opts...)
		if err != nil {
			return nil, nil, err
		}
		authority, err := openLocalCA(ctx, cfg, st, caKeys, log)
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return st, authority, nil
	}
	st, err := sqlstore.OpenPostgres(ctx, cfg.Database, opts...)
	if err != nil {
		return nil, nil, err
	}
	authority, err := issuance.OpenShared(ctx, st, caKeys)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, authority, nil
}

// openLocalCA opens the CA in the data directory, creating it only for a
// database that holds nothing yet, and never serves a database with
// another CA than the one it was made with: a database restored without
// its ca/ directory, or a server started in another directory, would
// otherwise get a brand-new CA, and every certificate it holds would stop
// chaining.
func openLocalCA(ctx context.Context, cfg config.Config, st *sqlstore.Store, caKeys issuance.Options, log *slog.Logger) (*issuance.Authority, error) {
	pinned, err := st.PinnedRoot(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// Certificates chain to a CA, and sealed secrets are salted with its
	// root; accounts alone do not belong to one (an operator may make them
	// before the first start). A database of a version that pinned no root
	// is known by these.
	certified, err := st.AnyCertificates(ctx)
	if err != nil {
		return nil, err
	}
	if !certified {
		stored, err := st.AccessKeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range stored {
			certified = certified || keys.IsSealedSecret(k.Secret)
		}
	}
	caDir, dbPath := absolute(cfg.CADir()), absolute(cfg.DatabasePath())
	caKeys.Dir, caKeys.MustExist = cfg.CADir(), pinned != "" || certified
	authority, err := issuance.Open(caKeys)
	if errors.Is(err, issuance.ErrNoCA) {
		return nil, fmt.Errorf("the database %s belongs to a CA (it holds certificates or sealed secrets, or records the CA's root), but the CA directory %s is missing: "+
			"restore it from the backup the database came from (or start in the data directory that has it); "+
			"fleetca does not make a new CA for existing data, since nothing it issued would chain to it", dbPath, caDir)
	}
	if err != nil {
		return nil, err
	}
	fingerprint := authority.RootFingerprint()
	if pinned == "" {
		// A new database, or one of a version that pinned nothing.
		if pinned, err = st.PinRoot(ctx, fingerprint); err != nil {
			return nil, err
		}
		if !certified {
			log.Info("pinned the CA; clients may pin its root too", "data_dir", absolute(cfg.DataDir), "root_sha256", fingerprint)
		}
	}
	if pinned != fingerprint {
		return nil, fmt.Errorf("the CA in %s (root SHA-256 %s) is not the CA the database %s was made with (root SHA-256 %s): "+
			"restore that CA's directory, or use the database that belongs to this CA", caDir, fingerprint, dbPath, pinned)
	}
	return authority, nil
}

// absolute is path made absolute for messages; as it is if that fails.
func absolute(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// bootstrapAccount makes the default account and its first access key on first
// start and writes the key to the credentials file.
func (s *Server) bootstrapAccount(ctx context.Context) error {
	account, cred, created, err := s.registry.DefaultAccount(ctx, s.cfg.AccountID)
	if err != nil {
		return err
	}
	s.AccountID = account
	if !created {
		if s.cfg.AccountID != "" && s.cfg.AccountID != account {
			s.log.Warn("FLEETCA_ACCOUNT_ID only names the account made on first start; this data directory already has one", "account", account)
		}
		return nil
	}
	body := fmt.Sprintf("# fleetca default account %s\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		account, cred.AccessKeyID, cred.SecretAccessKey)
	path := s.cfg.CredentialsPath()
	os.Remove(path) // a leftover from a start that crashed before its account was stored
	return keys.WriteFileExclusive(path, []byte(body), 0o600)
}

// Start listens on the API address and serves in the background.
func (s *Server) Start() error {
	tcp, err := net.Listen("tcp", s.cfg.APIAddr)
	if err != nil {
		return err
	}
	limited := newLimitListener(tcp, s.apiConnections)
	s.http.ConnState = limited.shed
	var ln net.Listener = limited
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.listener = ln
	if err := s.writeClientConfig(); err != nil {
		// A convenience for clients; the server serves without it.
		s.log.Warn("writing the AWS config file for clients", "err", err)
	}
	if s.mqtt != nil {
		if err := s.mqtt.Start(); err != nil {
			ln.Close()
			return err
		}
	}
	if s.cfg.DebugAddr != "" {
		if err := s.startDebug(); err != nil {
			ln.Close()
			if s.mqtt != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s.mqtt.Close(ctx)
				cancel()
			}
			return err
		}
	}
	s.watchStop, s.watchDone = make(chan struct{}), make(chan struct{})
	go s.watchHealth()
	s.revCtx, s.stopRevocation = context.WithCancel(context.Background())
	for _, svc := range s.revocation.Services() {
		s.revocationWG.Go(func() { svc.Run(s.revCtx) })
	}
	if s.cfg.Database != "" {
		s.revocationWG.Go(func() { s.followRotations(s.revCtx) })
	}
	s.served = make(chan struct{})
	go func() {
		s.serveErr = s.http.Serve(ln)
		close(s.served)
	}()
	s.logReady()
	return nil
}

// startDebug serves Go's profiler on its own listener, so that it is never
// reachable through the API's address.
func (s *Server) startDebug() error {
	ln, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return fmt.Errorf("debug address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.debugAddr = ln.Addr().String()
	go s.debug.Serve(ln)
	s.log.Info("profiler listening", "url", s.DebugURL())
	return nil
}

// DebugURL is the profiler's base URL; empty when DebugAddr is not set.
func (s *Server) DebugURL() string {
	if s.debugAddr == "" {
		return ""
	}
	return "http://" + s.debugAddr + "/debug/pprof/"
}

// URL is the API's base URL, for --endpoint-url.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.listener.Addr().String()
}

func (s *Server) logReady() {
	credentials := "FLEETCA_ACCESS_KEY_ID from the environment"
	try := fmt.Sprintf("aws --endpoint-url %s --region us-east-1 iot list-certificates", s.URL())
	if s.cfg.AccessKeyID == "" {
		credentials = absolute(s.cfg.CredentialsPath())
		try = "AWS_SHARED_CREDENTIALS_FILE=" + credentials + " " + try
	}
	attrs := []any{"endpoint", s.URL(), "account", s.AccountID, "credentials", credentials, "data_dir", absolute(s.cfg.DataDir),
		"root_sha256", s.authority.RootFingerprint()}
	if s.mqtt != nil {
		attrs = append(attrs, "mqtt", "mqtts://"+s.mqtt.Addr())
	}
	s.log.Info("fleetca is ready", attrs...)
	s.log.Info("try: " + try)
}

// Shutdown stops accepting requests, waits for those in flight (until ctx
// ends), and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.listener != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		<-s.served
		if !errors.Is(s.serveErr, http.ErrServerClosed) {
			errs = append(errs, s.serveErr)
		}
	}
	if s.watchStop != nil {
		close(s.watchStop)
		<-s.watchDone
	}
	if s.stopRevocation != nil {
		s.stopRevocation()
		s.revocationWG.Wait()
	}
	if s.mqtt != nil {
		if err := s.mqtt.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.debug != nil {
		errs = append(errs, s.debug.Close())
	}
	if s.keyPool != nil {
		s.keyPool.Close()
	}
	errs = append(errs, s.store.Close())
	if s.token != nil {
		errs = append(errs, s.token.Close())
	}
	// After everything that signs has stopped.
	errs = append(errs, s.audit.Close())
	if s.lock != nil {
		// Last: the next server may open the directory once the store is
		// closed.
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// MQTTAddr is the address of the MQTT device endpoint; empty when disabled.
func (s *Server) MQTTAddr() string {
	if s.mqtt == nil {
		return ""
	}
	return s.mqtt.Addr()
}

// Stopped is closed when the HTTP server stops, on Shutdown or on its own (for
// example when its listener fails); Err then tells why.
func (s *Server) Stopped() <-chan struct{} { return s.served }

// Err is why the HTTP server stopped; read it after Stopped is closed.
func (s *Server) Err() error { return s.serveErr }

// health is the liveness check: the process serves HTTP.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readinessTimeout bounds the database's answer to a readiness check.
const readinessTimeout = 2 * time.Second

// ready is the readiness check: 503 with the reasons while the database
// does not answer or refuses writes, or the MQTT listener cannot accept.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.readiness(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(err.Error() + "\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

func (s *Server) readiness(ctx context.Context) error {
	errs := []error{s.store.Health(ctx), s.audit.Err()}
	if s.mqtt != nil {
		errs = append(errs, s.mqtt.Ready())
	}
	if s.token != nil {
		errs = append(errs, s.token.Ready())
	}
	if err := s.rotationErr.Load(); err != nil {
		errs = append(errs, *err)
	}
	return errors.Join(errs...)
}

// healthCheckInterval is how often watchHealth checks readiness.
const healthCheckInterval = 2 * time.Second

// watchHealth logs each change of readiness once, not once per request that
// fails because of it: "not ready" with the reasons, then "ready again".
func (s *Server) watchHealth() {
	defer close(s.watchDone)
	t := time.NewTicker(healthCheckInterval)
	defer t.Stop()
	last := ""
	var pruned time.Time
	for {
		select {
		case <-s.watchStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
		err := s.readiness(ctx)
		if s.mqtt == nil && time.Since(pruned) > time.Minute {
			// The MQTT endpoint's janitor prunes the change feed; without
			// it, nothing reads the feed, and this keeps it short.
			pruned = time.Now()
			if err := s.registry.PruneChanges(ctx); err != nil {
				s.log.Warn("pruning the change feed", "err", err)
			}
		}
		cancel()
		now := ""
		if err != nil {
			now = err.Error()
		}
		switch {
		case now == last:
		case now != "":
			s.log.Error("not ready", "reason", now)
		default:
			s.log.Info("ready again")
		}
		last = now
	}
}

func (s *Server) rootPEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.authority.RootPEM())
}

// chainPEM serves the issuing CA and the root, for brokers and services that
// verify fleetca's certificates.
func (s *Server) chainPEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.authority.ChainPEM())
}

// credentialSource finds access keys for SigV4: the pair from the environment
// for the default account, and every key in the store.
type credentialSource struct {
	reg            *registry.Service
	envKeyID       string
	envSecret      string
	defaultAccount string
}

func (c credentialSource) LookupAccessKey(ctx context.Context, id string) (string, string, bool, error) {
	if c.envKeyID != "" && id == c.envKeyID {
		return c.envSecret, c.defaultAccount, true, nil
	}
	return c.reg.AccessKey(ctx, id)
}
