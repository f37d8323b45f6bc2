// Package telemetry keeps fleetca's Prometheus metrics: requests and their
// latency per operation and status, certificates issued, the store's commit
// batches, and the process's CPU and memory. The front ends and the store
// report through narrow observer interfaces; only this package and server
// know Prometheus.
package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of fleetca's metrics.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	issued        *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitLatency prometheus.Histogram
	admissions    *prometheus.CounterVec
	lintRefusals  *prometheus.CounterVec
	crlNumber     *prometheus.GaugeVec
	crlEntries    *prometheus.GaugeVec
	ocspAnswers   *prometheus.CounterVec
}

// New returns fresh metrics, with the process and Go runtime collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetca_requests_total", Help: "Requests answered, by front end, operation and status.",
		}, []string{"frontend", "operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fleetca_request_duration_seconds", Help: "Time to answer a request, by front end and operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"frontend", "operation"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetca_certificates_issued_total", Help: "Certificates issued and stored, by operation.",
		}, []string{"operation"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fleetca_store_commit_batch_size", Help: "Writes that shared one commit (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fleetca_store_commit_duration_seconds", Help: "Time of one commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetca_mqtt_admissions_total", Help: "MQTT connections judged, by outcome (admitted, refused, invalid_client_id, error) and, for refusals, reason.",
		}, []string{"outcome", "reason"}),
		crlNumber: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetca_crl_number", Help: "Number of the CRL being served, by issuing CA.",
		}, []string{"issuer"}),
		crlEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetca_crl_entries", Help: "Certificates listed on the CRL being served, by issuing CA.",
		}, []string{"issuer"}),
		ocspAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetca_ocsp_answers_total", Help: "OCSP answers, by status (good, revoked, unknown, or the error status) and whether a pre-signed answer served it.",
		}, []string{"status", "cached"}),
		lintRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetca_lint_refusals_total", Help: "Certificates refused before signing because zlint found an error, by profile.",
		}, []string{"profile"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.issued, m.batchSize, m.commitLatency, m.admissions,
		m.crlNumber, m.crlEntries, m.ocspAnswers, m.lintRefusals,
		withoutDescriptors{collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, collectors.NewGoCollector())
	return m
}

// withoutDescriptors is the process collector less its file-descriptor
// metrics: /metrics needs no authentication, and how close the process is to
// its descriptor limit would tell an attacker how far a connection flood has
// got.
type withoutDescriptors struct{ prometheus.Collector }

func (c withoutDescriptors) Describe(ch chan<- *prometheus.Desc) {
	all := make(chan *prometheus.Desc)
	go func() { c.Collector.Describe(all); close(all) }()
	for d := range all {
		if !describesDescriptors(d) {
			ch <- d
		}
	}
}

func (c withoutDescriptors) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { c.Collector.Collect(all); close(all) }()
	for m := range all {
		if !describesDescriptors(m.Desc()) {
			ch <- m
		}
	}
}

func describesDescriptors(d *prometheus.Desc) bool {
	s := d.String()
	return strings.Contains(s, `"process_open_fds"`) || strings.Contains(s, `"process_max_fds"`)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveRequest records an API request (it is an iotapi.Observer).
func (m *Metrics) ObserveRequest(operation string, status int, elapsed time.Duration) {
	m.observe("http", operation, status, elapsed)
}

// ObserveMQTTRequest records a fleet-provisioning request.
func (m *Metrics) ObserveMQTTRequest(operation string, status int, elapsed time.Duration) {
	m.observe("mqtt", operation, status, elapsed)
}

func (m *Metrics) observe(frontend, operation string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(frontend, operation, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(frontend, operation).Observe(elapsed.Seconds())
	if status == http.StatusOK && issuing[operation] {
		m.issued.WithLabelValues(frontend + "/" + operation).Inc()
	}
}

// issuing are the operations that issue and store a certificate when they
// succeed.
var issuing = map[string]bool{"CreateKeysAndCertificate": true, "CreateCertificateFromCsr": true}

// ObserveCommit records a store commit of size writes.
func (m *Metrics) ObserveCommit(size int, elapsed time.Duration) {
	m.batchSize.Observe(float64(size))
	m.commitLatency.Observe(elapsed.Seconds())
}

// ObserveAdmission implements mqttapi.Observer. The reasons are the
// registry's fixed refusals, so the label's values are bounded.
func (m *Metrics) ObserveAdmission(outcome, reason string) {
	m.admissions.WithLabelValues(outcome, reason).Inc()
}

// ObserveLintRefusal implements issuance.LintObserver; the profiles are
// issuance's fixed few.
func (m *Metrics) ObserveLintRefusal(profile string) {
	m.lintRefusals.WithLabelValues(profile).Inc()
}

// ObserveCRL implements revocation.Observer.
// The issuers are the CA's issuing CAs, a handful over its life.
func (m *Metrics) ObserveCRL(issuer string, number int64, entries int) {
	m.crlNumber.WithLabelValues(issuer).Set(float64(number))
	m.crlEntries.WithLabelValues(issuer).Set(float64(entries))
}

// ObserveOCSP implements revocation.Observer; status is one of a fixed few.
func (m *Metrics) ObserveOCSP(status string, cached bool) {
	m.ocspAnswers.WithLabelValues(status, strconv.FormatBool(cached)).Inc()
}

// WatchConnectedDevices has /metrics report connected(), the number of
// devices connected, as fleetca_mqtt_connected_devices.
func (m *Metrics) WatchConnectedDevices(connected func() int) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fleetca_mqtt_connected_devices", Help: "Devices connected to the MQTT endpoint now.",
	}, func() float64 { return float64(connected()) }))
}
