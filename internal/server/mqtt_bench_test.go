package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// devicePolicy is a fleet's usual policy: each device connects as itself
// and publishes, subscribes and receives under its own topics, with a deny
// of a reserved subtree that every publish check passes through.
const devicePolicy = `{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:*:client/bench-*"},
{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:*:topic/devices/${iot:ClientId}/*"},
{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:*:topicfilter/devices/${iot:ClientId}/*"},
{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:*:topic/devices/*/firmware/*"}]}`

// BenchmarkMQTTPublish: 64 devices, each subscribed to its own topic,
// publish QoS 1 messages there (each waits for its PUBACK) and receive
// them, with IoT policies enforced (a publish check and a receive check per
// message) and with enforcement off, back to back in one run. It reports
// messages per second and the process's CPU per message (broker and the 64
// paho clients together, the same in both modes); the enforced figures
// over the skipped ones are the cost of enforcement. -count runs each mode
// n times in a row; run the command several times to interleave them.
//
// Run: go test -run '^$' -bench MQTTPublish -benchtime 20000x ./internal/server/
func BenchmarkMQTTPublish(b *testing.B) {
	for _, mode := range []struct {
		name string
		skip bool
	}{{"enforced", false}, {"skipped", true}} {
		b.Run(mode.name, func(b *testing.B) {
			ts := startServerWith(b, "", func(c *config.Config) { c.InsecureSkipPolicies = mode.skip })
			c := ts.iotClient()
			ctx := context.Background()
			if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("device"), PolicyDocument: aws.String(devicePolicy)}); err != nil {
				b.Fatal(err)
			}
			const devices = 64
			type bench struct {
				*device
				topic    string
				received chan struct{}
			}
			all := make([]bench, devices)
			for i := range all {
				id := fmt.Sprintf("bench-%d", i)
				csr, key := testpki.NewCSR(b, "p256", pkixName(id))
				out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("device"), Target: out.CertificateArn}); err != nil {
					b.Fatal(err)
				}
				d, err := ts.connect(b, newKeyPair(b, *out.CertificatePem, testpki.KeyPEM(b, key)), id)
				if err != nil {
					b.Fatal(err)
				}
				all[i] = bench{device: d, topic: "devices/" + id + "/telemetry", received: make(chan struct{}, 1024)}
				received := all[i].received
				tok := d.Subscribe(all[i].topic, 1, func(paho.Client, paho.Message) { received <- struct{}{} })
				if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
					b.Fatalf("subscribe: %v", tok.Error())
				}
			}
			payload := []byte(`{"temperature":21.5,"humidity":40}`)
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			var wg sync.WaitGroup
			for i := range all {
				n := b.N / devices
				if i < b.N%devices {
					n++
				}
				wg.Add(1)
				go func(d bench, n int) {
					defer wg.Done()
					for range n {
						tok := d.Publish(d.topic, 1, false, payload)
						if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
							b.Errorf("publish: %v", tok.Error())
							return
						}
						select {
						case <-d.received:
						case <-time.After(waitLimit):
							b.Errorf("%s: a message was not delivered", d.topic)
							return
						}
					}
				}(all[i], n)
			}
			wg.Wait()
			elapsed, used := time.Since(start), processCPU()-cpu
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/msg")
		})
	}
}
