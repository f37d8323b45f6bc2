package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// BenchmarkRegistryScale: DescribeThing of a random thing and ListThings (a
// first page of 50; and the 50 things of a random attribute value) through the SDK, on a
// registry of 1,000 things and 100 policies and on one of 100,000 things and
// 10,000 policies, reporting each call's p50 and p99. The large registry is
// made through the API with 64 clients (a few minutes on 2 cores) and
// skipped with -short.
//
// Run: go test -run '^$' -bench RegistryScale -benchtime 2000x ./internal/server/
func BenchmarkRegistryScale(b *testing.B) {
	for _, size := range []struct{ things, policies int }{{1_000, 100}, {100_000, 10_000}} {
		b.Run(fmt.Sprintf("things=%d/policies=%d", size.things, size.policies), func(b *testing.B) {
			if testing.Short() && size.things > 1_000 {
				b.Skip("SKIPPED: the large registry takes minutes to make")
			}
			ts := startServer(b, "")
			c := ts.iotClient()
			seed(b, size.things, func(ctx context.Context, i int) error {
				_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(thingName(i)),
					AttributePayload: &types.AttributePayload{Attributes: map[string]string{"site": fmt.Sprintf("site-%d", i%100), "batch": fmt.Sprint(i / 50)}}})
				return err
			})
			seed(b, size.policies, func(ctx context.Context, i int) error {
				_, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(fmt.Sprintf("policy-%06d", i)), PolicyDocument: aws.String(devicePolicy)})
				return err
			})
			ctx := context.Background()
			b.Run("DescribeThing", func(b *testing.B) {
				latencies(b, func() error {
					_, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(thingName(rand.IntN(size.things)))})
					return err
				})
			})
			b.Run("ListThings", func(b *testing.B) {
				latencies(b, func() error {
					out, err := c.ListThings(ctx, &iot.ListThingsInput{MaxResults: aws.Int32(50)})
					if err != nil {
						return err
					}
					if len(out.Things) != 50 {
						return fmt.Errorf("a page of %d things", len(out.Things))
					}
					return nil
				})
			})
			b.Run("ListThingsByAttribute", func(b *testing.B) {
				latencies(b, func() error {
					// Each batch has 50 things whatever the registry's
					// size, so both sizes answer the same page.
					out, err := c.ListThings(ctx, &iot.ListThingsInput{MaxResults: aws.Int32(50),
						AttributeName: aws.String("batch"), AttributeValue: aws.String(fmt.Sprint(rand.IntN(size.things / 50)))})
					if err == nil && len(out.Things) != 50 {
						err = fmt.Errorf("a batch of %d things", len(out.Things))
					}
					return err
				})
			})
		})
	}
}

func thingName(i int) string { return fmt.Sprintf("thing-%07d", i) }

// seed makes n resources with 64 clients at once.
func seed(b *testing.B, n int, create func(ctx context.Context, i int) error) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := create(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			b.Fatal(err)
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// latencies runs call b.N times on one goroutine and reports its p50 and
// p99 in microseconds.
func latencies(b *testing.B, call func() error) {
	b.Helper()
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
