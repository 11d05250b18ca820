// natsbench: the NATS peer of chanbench (nats.go from Debian's
// golang-github-nats-io-go-nats-dev, built in GOPATH mode by run.sh:
// GOPATH=/usr/share/gocode GO111MODULE=off go build natsbench.go).
// Same output: "RESULT <tag> <metric> <value>" lines.
//
//	natsbench -p PORT [-n N] [-s SIZE] [-t DEPTH] [-o SAMPLES] [-k TAG] [-file] pubsub|reqrep|js
//
// pubsub (1): one publishing connection, one subscribing connection;
// msgs_s counts the messages the subscriber got per second (NATS neither
// waits for a receiver nor pushes back; pending limits are lifted so the
// client drops nothing). reqrep (2): a requester connection and a replier
// connection (in one process); p50/p99/mean of a round trip.
// js (7, needs nats-server -js): JetStream, a memory-storage stream and a
// durable pull consumer with explicit ack and max_ack_pending DEPTH; one
// connection publishes N values asynchronously (at most 256 unconfirmed),
// another fetches batches of DEPTH and acks each message (Msg.Ack: an
// asynchronous ack, no round trip); msgs_s counts acked messages per second,
// from the first publish to the last ack sent.
// js -file (9): the same on a file-storage stream, with at most DEPTH
// publishes unconfirmed (not 256), and p50/p99/mean of each publish, from
// PublishAsync's return to its PubAck: the durable workload. nats-server
// 2.9 writes file storage through its own buffers and syncs on an interval
// (minutes), not per message: its figures are those of an fsync=no log.
//
// SPDX-License-Identifier: BSD-2-Clause
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
)

func result(tag, metric string, v float64) {
	fmt.Printf("RESULT %s %s %.6g\n", tag, metric, v)
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "natsbench: "+format+"\n", a...)
	os.Exit(1)
}

func connect(port int) *nats.Conn {
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		die("connect: %v", err)
	}
	return nc
}

func pubsub(port, n, size int, tag string) {
	pub, sub := connect(port), connect(port)
	defer pub.Close()
	defer sub.Close()
	done := make(chan struct{})
	got := 0
	s, err := sub.Subscribe("bench.tp", func(m *nats.Msg) {
		got++
		if got == n {
			close(done)
		}
	})
	if err != nil {
		die("subscribe: %v", err)
	}
	s.SetPendingLimits(-1, -1)
	sub.Flush()
	payload := make([]byte, size)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if err := pub.Publish("bench.tp", payload); err != nil {
			die("publish: %v", err)
		}
	}
	pub.Flush()
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		die("only %d of %d messages arrived in 120 s", got, n)
	}
	result(tag, "msgs_s", float64(n)/time.Since(t0).Seconds())
}

func reqrep(port, n, size int, tag, samples string) {
	req, rep := connect(port), connect(port)
	defer req.Close()
	defer rep.Close()
	if _, err := rep.Subscribe("bench.rr", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		die("subscribe: %v", err)
	}
	rep.Flush()
	payload := make([]byte, size)
	warm := n / 10
	lat := make([]float64, 0, n)
	for i := 0; i < n+warm; i++ {
		t0 := time.Now()
		if _, err := req.Request("bench.rr", payload, 10*time.Second); err != nil {
			die("request: %v", err)
		}
		if i >= warm {
			lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e3)
		}
	}
	report(tag, lat, samples)
}

// report prints p50, p99 and the mean of lat (µs), and writes them to samples if set.
func report(tag string, lat []float64, samples string) {
	sort.Float64s(lat)
	q := func(p float64) float64 { return lat[int(p*float64(len(lat)-1)+0.5)] }
	sum := 0.0
	for _, v := range lat {
		sum += v
	}
	result(tag, "p50_us", q(0.50))
	result(tag, "p99_us", q(0.99))
	result(tag, "mean_us", sum/float64(len(lat)))
	if samples != "" {
		f, err := os.Create(samples)
		if err != nil {
			die("%v", err)
		}
		for _, v := range lat {
			fmt.Fprintf(f, "%.3f\n", v)
		}
		f.Close()
	}
}

// published is a publish in flight: when PublishAsync returned, and its PubAck to come.
type published struct {
	t time.Time
	f nats.PubAckFuture
}

// timePublishes receives the publishes in order and times each to its PubAck.
func timePublishes(in <-chan published, lat *[]float64, done chan<- struct{}) {
	for p := range in {
		select {
		case <-p.f.Ok():
			*lat = append(*lat, float64(time.Since(p.t).Nanoseconds())/1e3)
		case err := <-p.f.Err():
			die("publish: %v", err)
		}
	}
	close(done)
}

func jsbench(port, n, size, depth int, file bool, tag string) {
	pub, sub := connect(port), connect(port)
	defer pub.Close()
	defer sub.Close()
	storage, inflight := nats.MemoryStorage, 256
	if file {
		storage, inflight = nats.FileStorage, depth
	}
	pjs, err := pub.JetStream(nats.PublishAsyncMaxPending(inflight))
	if err != nil {
		die("jetstream: %v", err)
	}
	sjs, err := sub.JetStream()
	if err != nil {
		die("jetstream: %v", err)
	}
	name := fmt.Sprintf("BENCH%d", os.Getpid())
	subj := "bench.js." + name
	if _, err := pjs.AddStream(&nats.StreamConfig{Name: name, Subjects: []string{subj},
		Storage: storage}); err != nil {
		die("add stream: %v", err)
	}
	defer pjs.DeleteStream(name)
	s, err := sjs.PullSubscribe(subj, "bench", nats.BindStream(name), nats.AckExplicit(),
		nats.MaxAckPending(depth))
	if err != nil {
		die("pull subscribe: %v", err)
	}
	payload := make([]byte, size)
	lat := make([]float64, 0, n)
	timed, ltimed := make(chan published, inflight), make(chan struct{})
	go timePublishes(timed, &lat, ltimed)
	t0 := time.Now()
	perr := make(chan error, 1)
	go func() {
		defer close(timed)
		for i := 0; i < n; i++ {
			f, err := pjs.PublishAsync(subj, payload)
			if err != nil {
				perr <- err
				return
			}
			if file {
				timed <- published{time.Now(), f}
			}
		}
		select {
		case <-pjs.PublishAsyncComplete():
			perr <- nil
		case <-time.After(120 * time.Second):
			perr <- fmt.Errorf("publishes unconfirmed after 120 s")
		}
	}()
	got := 0
	for got < n {
		msgs, err := s.Fetch(depth, nats.MaxWait(10*time.Second))
		if err != nil {
			die("fetch after %d of %d: %v", got, n, err)
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				die("ack: %v", err)
			}
		}
		got += len(msgs)
	}
	if err := sub.Flush(); err != nil { // the last acks reached the server
		die("flush: %v", err)
	}
	secs := time.Since(t0).Seconds()
	if err := <-perr; err != nil {
		die("publish: %v", err)
	}
	result(tag, "msgs_s", float64(got)/secs)
	<-ltimed
	if file {
		report(tag, lat, "")
	}
}

func main() {
	port := flag.Int("p", 0, "nats-server port")
	n := flag.Int("n", 0, "messages or round trips")
	size := flag.Int("s", 64, "value size")
	samples := flag.String("o", "", "latency samples file (µs)")
	tag := flag.String("k", "", "RESULT tag")
	depth := flag.Int("t", 16, "js: max_ack_pending and fetch batch")
	file := flag.Bool("file", false, "js: file storage, DEPTH publishes in flight, their latency")
	flag.Parse()
	if *port <= 0 || flag.NArg() != 1 {
		die("usage: natsbench -p PORT [-n N] [-s SIZE] [-t DEPTH] [-o FILE] [-k TAG] [-file] pubsub|reqrep|js")
	}
	switch flag.Arg(0) {
	case "pubsub":
		if *n == 0 {
			*n = 200000
		}
		if *tag == "" {
			*tag = "w1"
		}
		pubsub(*port, *n, *size, *tag)
	case "reqrep":
		if *n == 0 {
			*n = 20000
		}
		if *tag == "" {
			*tag = "w2"
		}
		reqrep(*port, *n, *size, *tag, *samples)
	case "js":
		if *n == 0 {
			*n = 100000
		}
		if *tag == "" {
			*tag = "w7_js"
		}
		jsbench(*port, *n, *size, *depth, *file, *tag)
	default:
		die("unknown workload %s", flag.Arg(0))
	}
}
