package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testBody = `{"model":"gpt-4","messages":[{"role":"user","content":"Summarize this."}]}`

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestUpstreamCompletion(t *testing.T) {
	srv := httptest.NewServer(newUpstream(20, 0).handler())
	defer srv.Close()
	for _, path := range []string{"/v1/chat/completions", "/chat/completions"} {
		resp := post(t, srv.URL+path, testBody)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		var got struct {
			ID, Object, Model string
			Created           int64
			Choices           []struct {
				Message      struct{ Role, Content string }
				FinishReason string `json:"finish_reason"`
			}
			Usage map[string]int
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Object != "chat.completion" || got.Model != "gpt-4" || got.ID == "" || got.Created == 0 {
			t.Errorf("%s: bad envelope %+v", path, got)
		}
		if len(got.Choices) != 1 || got.Choices[0].Message.Content != completion ||
			got.Choices[0].Message.Role != "assistant" || got.Choices[0].FinishReason != "stop" {
			t.Errorf("%s: bad choices %+v", path, got.Choices)
		}
		u := got.Usage
		if u["prompt_tokens"] == 0 || u["total_tokens"] != u["prompt_tokens"]+u["completion_tokens"] {
			t.Errorf("%s: bad usage %v", path, u)
		}
	}
}

func TestUpstreamRejectsBadJSON(t *testing.T) {
	srv := httptest.NewServer(newUpstream(20, 0).handler())
	defer srv.Close()
	if resp := post(t, srv.URL+"/v1/chat/completions", "{"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}

func TestUpstreamStream(t *testing.T) {
	srv := httptest.NewServer(newUpstream(20, 0).handler())
	defer srv.Close()
	for _, withUsage := range []bool{false, true} {
		body := `{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		if withUsage {
			body = `{"model":"gpt-4","stream":true,"stream_options":{"include_usage":true},` +
				`"messages":[{"role":"user","content":"hi"}]}`
		}
		resp := post(t, srv.URL+"/v1/chat/completions", body)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var events []string
		scanner := bufio.NewScanner(resp.Body)
		for scanner.Scan() {
			if data, ok := strings.CutPrefix(scanner.Text(), "data: "); ok {
				events = append(events, data)
			}
		}
		if events[len(events)-1] != "[DONE]" {
			t.Fatalf("stream does not end with [DONE]: %q", events[len(events)-1])
		}
		chunks := events[:len(events)-1]
		var content strings.Builder
		usageChunks := 0
		for i, raw := range chunks {
			var c struct {
				Object  string
				Choices []struct {
					Delta        struct{ Role, Content string }
					FinishReason *string `json:"finish_reason"`
				}
				Usage map[string]int
			}
			if err := json.Unmarshal([]byte(raw), &c); err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if c.Object != "chat.completion.chunk" {
				t.Fatalf("chunk %d: object %q", i, c.Object)
			}
			if len(c.Choices) == 0 {
				usageChunks++
				if c.Usage["total_tokens"] == 0 {
					t.Errorf("usage chunk without usage: %s", raw)
				}
				continue
			}
			content.WriteString(c.Choices[0].Delta.Content)
		}
		if want := map[bool]int{false: 0, true: 1}[withUsage]; usageChunks != want {
			t.Errorf("include_usage=%v: %d usage chunks", withUsage, usageChunks)
		}
		if n := len(chunks) - usageChunks; n != 20 {
			t.Errorf("%d chunks, want 20", n)
		}
		if content.String() != completion {
			t.Errorf("stream content %q", content.String())
		}
	}
}

func TestLoadAgainstUpstream(t *testing.T) {
	srv := httptest.NewServer(newUpstream(20, 0).handler())
	defer srv.Close()
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(bodyFile, []byte(testBody), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		args := []string{"--url", srv.URL + "/v1/chat/completions", "--body", bodyFile,
			"--concurrency", "4", "--requests", "100", "--warmup", "10", "--raw", "--header", "x-test: 1"}
		if stream {
			args = append(args, "--stream")
		}
		var out bytes.Buffer
		if err := runLoad(args, &out); err != nil {
			t.Fatal(err)
		}
		var r Result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Count != 100 || r.Errors != 0 || len(r.NonOK) != 0 || len(r.Latencies) != 100 {
			t.Fatalf("stream=%v: %+v", stream, r)
		}
		if r.LatencyMS.P50 <= 0 || r.TTFBMS.P50 > r.LatencyMS.Max || r.RPS <= 0 {
			t.Errorf("stream=%v: implausible figures %+v", stream, r)
		}
	}
}

func TestLoadCountsNonOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":{}}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(bodyFile, []byte(testBody), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"--url", srv.URL, "--body", bodyFile, "--requests", "5", "--warmup", "0"}
	if err := runLoad(args, &out); err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.NonOK["503"] != 5 {
		t.Fatalf("non_2xx = %v", r.NonOK)
	}
}

func TestLoadRefusesRemoteURL(t *testing.T) {
	if _, _, err := parseLoad([]string{"--url", "http://192.0.2.1/", "--requests", "1"}); err == nil {
		t.Fatal("a non-loopback URL was accepted")
	}
}

func TestPercentiles(t *testing.T) {
	values := make([]float64, 100)
	for i := range values {
		values[i] = float64(i + 1)
	}
	if p := percentiles(values); p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("%+v", p)
	}
}

// protoMessage joins encoded length-delimited protobuf fields.
func protoMessage(fields ...[]byte) []byte { return bytes.Join(fields, nil) }

func field(num uint64, payload []byte) []byte {
	out := binary.AppendUvarint(nil, num<<3|2)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

func TestCountSpans(t *testing.T) {
	span := protoMessage(field(1, []byte("0123456789abcdef")), []byte{0x38, 0x01}, field(5, []byte("GET /")))
	scope := protoMessage(field(1, []byte("scope")), field(2, span), field(2, span))
	resource := protoMessage(field(1, []byte("resource")), field(2, scope), field(2, protoMessage(field(2, span))))
	req := protoMessage(field(1, resource), field(1, protoMessage(field(2, protoMessage(field(2, span))))))
	if n, err := countSpans(req); err != nil || n != 4 {
		t.Fatalf("countSpans = %d, %v; want 4", n, err)
	}
	if _, err := countSpans(req[:len(req)-1]); err == nil {
		t.Fatal("a truncated request was accepted")
	}
}
