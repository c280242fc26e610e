package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// headerFlags collects repeated --header 'name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("expected 'name: value', got %q", v)
	}
	*h = append(*h, strings.TrimSpace(name)+":"+strings.TrimSpace(value))
	return nil
}

type loadConfig struct {
	url         string
	body        []byte
	headers     http.Header
	concurrency int
	duration    time.Duration // closed loop until then, or
	requests    int           // this many requests in all
	warmup      int
	stream      bool
	timeout     time.Duration
}

// sample is one request as the caller saw it.
type sample struct {
	latency time.Duration // from sending to the last body byte
	ttfb    time.Duration // from sending to the first body byte
	status  int
	err     error
}

// Percentiles in milliseconds; nearest-rank, as bench/proxy_bench.py computes them.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is what `loadgen load` prints.
type Result struct {
	Count      int            `json:"count"`
	Errors     int            `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
	NonOK      map[string]int `json:"non_2xx"`
	ElapsedS   float64        `json:"elapsed_s"`
	RPS        float64        `json:"rps"`
	LatencyMS  Percentiles    `json:"latency_ms"`
	TTFBMS     Percentiles    `json:"ttfb_ms"`
	Latencies  []float64      `json:"latencies_ms,omitempty"` // with --raw
	TTFBs      []float64      `json:"ttfbs_ms,omitempty"`     // with --raw
}

func newClient(concurrency int, timeout time.Duration) *http.Client {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: transport, Timeout: timeout}
}

// streamBody returns body with "stream": true and stream_options.include_usage.
func streamBody(body []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("--body is not a JSON object: %w", err)
	}
	m["stream"] = true
	m["stream_options"] = map[string]any{"include_usage": true}
	return json.Marshal(m)
}

var errIncomplete = errors.New("incomplete answer")

// do sends one request and reads the whole answer into buf's worth of reads,
// keeping only the tail to check that the answer is complete.
func do(client *http.Client, cfg *loadConfig, buf []byte) sample {
	req, err := http.NewRequest(http.MethodPost, cfg.url, bytes.NewReader(cfg.body))
	if err != nil {
		return sample{err: err}
	}
	req.Header = cfg.headers.Clone()
	req.ContentLength = int64(len(cfg.body))
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return sample{err: err}
	}
	defer resp.Body.Close()
	s := sample{status: resp.StatusCode}
	var tail []byte
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if s.ttfb == 0 {
				s.ttfb = time.Since(start)
			}
			tail = append(tail, buf[max(0, n-16):n]...)
			if len(tail) > 16 {
				tail = append(tail[:0], tail[len(tail)-16:]...)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			s.err = rerr
			return s
		}
	}
	s.latency = time.Since(start)
	if s.status/100 == 2 && !complete(tail, cfg.stream) {
		s.err = errIncomplete
	}
	return s
}

// complete says whether an answer ends as it should: a JSON object, or an
// event stream's `data: [DONE]`.
func complete(tail []byte, stream bool) bool {
	tail = bytes.TrimSpace(tail)
	if stream {
		return bytes.HasSuffix(tail, []byte("[DONE]"))
	}
	return bytes.HasSuffix(tail, []byte("}"))
}

// run drives cfg.concurrency closed loops and returns every sample.
func run(client *http.Client, cfg *loadConfig, requests int, duration time.Duration) ([]sample, time.Duration) {
	var issued atomic.Int64
	deadline := time.Now().Add(duration)
	perWorker := make([][]sample, cfg.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				if requests > 0 {
					if issued.Add(1) > int64(requests) {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				perWorker[w] = append(perWorker[w], do(client, cfg, buf))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return slices.Concat(perWorker...), elapsed
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// percentiles of sorted values, nearest-rank.
func percentiles(sorted []float64) Percentiles {
	if len(sorted) == 0 {
		return Percentiles{}
	}
	at := func(p float64) float64 {
		return sorted[max(0, int(math.Ceil(p*float64(len(sorted))))-1)]
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: sorted[len(sorted)-1]}
}

func summarize(samples []sample, elapsed time.Duration, raw bool) Result {
	r := Result{NonOK: map[string]int{}, ElapsedS: elapsed.Seconds()}
	var lat, ttfb []float64
	for _, s := range samples {
		if s.err != nil {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = s.err.Error()
			}
			continue
		}
		r.Count++
		if s.status/100 != 2 {
			r.NonOK[strconv.Itoa(s.status)]++
			continue
		}
		lat = append(lat, ms(s.latency))
		ttfb = append(ttfb, ms(s.ttfb))
	}
	if elapsed > 0 {
		r.RPS = float64(r.Count) / elapsed.Seconds()
	}
	if raw {
		r.Latencies, r.TTFBs = slices.Clone(lat), slices.Clone(ttfb)
	}
	slices.Sort(lat)
	slices.Sort(ttfb)
	r.LatencyMS, r.TTFBMS = percentiles(lat), percentiles(ttfb)
	return r
}

func parseLoad(args []string) (*loadConfig, bool, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	target := fs.String("url", "", "loopback URL to POST to")
	bodyFile := fs.String("body", "", "file with the JSON request body")
	concurrency := fs.Int("concurrency", 1, "requests in flight (closed loops)")
	duration := fs.Duration("duration", 0, "measure for this long, or")
	requests := fs.Int("requests", 0, "measure this many requests")
	warmup := fs.Int("warmup", 200, "requests sent first and not counted")
	stream := fs.Bool("stream", false, `ask for a stream ("stream": true, usage included) and expect SSE`)
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of one request")
	raw := fs.Bool("raw", false, "also print every latency and TTFB, in order of completion per loop")
	var headers headerFlags
	fs.Var(&headers, "header", "'name: value' to send (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if (*duration > 0) == (*requests > 0) {
		return nil, false, errors.New("give exactly one of --duration and --requests")
	}
	if *concurrency < 1 || *warmup < 0 {
		return nil, false, errors.New("--concurrency must be at least 1 and --warmup not negative")
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		return nil, false, fmt.Errorf("--url must be an http:// URL, got %q", *target)
	}
	if err := checkLoopback(u.Host); err != nil {
		return nil, false, err
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return nil, false, err
	}
	if *stream {
		if body, err = streamBody(body); err != nil {
			return nil, false, err
		}
	}
	h := http.Header{"Content-Type": {"application/json"}}
	for _, kv := range headers {
		name, value, _ := strings.Cut(kv, ":")
		h.Add(name, value)
	}
	return &loadConfig{
		url: *target, body: body, headers: h, concurrency: *concurrency,
		duration: *duration, requests: *requests, warmup: *warmup, stream: *stream, timeout: *timeout,
	}, *raw, nil
}

func runLoad(args []string, out io.Writer) error {
	cfg, raw, err := parseLoad(args)
	if err != nil {
		return err
	}
	client := newClient(cfg.concurrency, cfg.timeout)
	defer client.CloseIdleConnections()
	if cfg.warmup > 0 {
		run(client, cfg, cfg.warmup, 0)
	}
	samples, elapsed := run(client, cfg, cfg.requests, cfg.duration)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(summarize(samples, elapsed, raw))
}
