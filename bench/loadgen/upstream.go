package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// completion is the canned answer, about 60 tokens: long enough to look like
// a summary, short enough that the benchmark measures the proxy, not copying.
const completion = "The report describes a quarter of steady growth: revenue rose by eight " +
	"percent, driven by the subscription business, while hardware sales were flat. " +
	"Costs grew more slowly than revenue, so the operating margin improved. The " +
	"company expects similar growth next quarter and plans to hire in support."

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
		Name    string          `json:"name,omitempty"`
	} `json:"messages"`
	MaxTokens     *int `json:"max_tokens,omitempty"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
}

type message struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

type choice struct {
	Index        int       `json:"index"`
	Message      *message  `json:"message,omitempty"`
	Delta        *message  `json:"delta,omitempty"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type usageBody struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionBody struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []choice   `json:"choices"`
	Usage   *usageBody `json:"usage,omitempty"`
}

type upstream struct {
	pieces   []string // the completion cut into the content deltas of a stream
	interval time.Duration
	ids      atomic.Uint64
}

// newUpstream cuts the completion into chunks-2 content pieces: a stream is
// a role chunk, the pieces, and a finish chunk.
func newUpstream(chunks int, interval time.Duration) *upstream {
	words := strings.SplitAfter(completion, " ")
	n := max(chunks-2, 1)
	pieces := make([]string, n)
	for i, w := range words {
		pieces[i*n/len(words)] += w
	}
	return &upstream{pieces: pieces, interval: interval}
}

func (u *upstream) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", u.chat)
	mux.HandleFunc("POST /chat/completions", u.chat)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

func openAIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{
		"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil},
	})
	_, _ = w.Write(body)
}

func (u *upstream) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		openAIError(w, http.StatusBadRequest, "request body is not valid JSON: "+err.Error())
		return
	}
	if req.Model == "" || len(req.Messages) == 0 {
		openAIError(w, http.StatusBadRequest, "'model' and 'messages' are required")
		return
	}
	// A rough count, as a provider would bill it: 4 bytes a token, plus framing.
	prompt := 3
	for _, m := range req.Messages {
		prompt += 3 + len(m.Content)/4
	}
	usage := &usageBody{PromptTokens: prompt, CompletionTokens: len(completion) / 4}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	body := completionBody{
		ID:      "chatcmpl-bench-" + strconv.FormatUint(u.ids.Add(1), 36),
		Created: time.Now().Unix(),
		Model:   req.Model,
	}
	if req.Stream {
		u.stream(w, body, usage, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	stop := "stop"
	body.Object = "chat.completion"
	body.Choices = []choice{{Message: &message{Role: "assistant", Content: completion}, FinishReason: &stop}}
	body.Usage = usage
	out, err := json.Marshal(body)
	if err != nil {
		openAIError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

// stream writes the answer as server-sent chat.completion.chunk events,
// flushing each one, with the configured pause between chunks.
func (u *upstream) stream(w http.ResponseWriter, body completionBody, usage *usageBody, withUsage bool) {
	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	body.Object = "chat.completion.chunk"
	stop := "stop"
	deltas := make([]choice, 0, len(u.pieces)+2)
	deltas = append(deltas, choice{Delta: &message{Role: "assistant"}})
	for _, p := range u.pieces {
		deltas = append(deltas, choice{Delta: &message{Content: p}})
	}
	deltas = append(deltas, choice{Delta: &message{}, FinishReason: &stop})
	for i, c := range deltas {
		if i > 0 && u.interval > 0 {
			time.Sleep(u.interval)
		}
		body.Choices = []choice{c}
		if !writeEvent(w, flusher, body) {
			return
		}
	}
	if withUsage {
		body.Choices = []choice{}
		body.Usage = usage
		if !writeEvent(w, flusher, body) {
			return
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

func writeEvent(w io.Writer, flusher http.Flusher, event completionBody) bool {
	data, err := json.Marshal(event)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
		return false
	}
	if flusher != nil {
		flusher.Flush()
	}
	return true
}

func runUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback HOST:PORT to serve on")
	chunks := fs.Int("chunks", 20, "chunks in a streamed answer (role chunk, content, finish chunk)")
	interval := fs.Duration("chunk-interval", 0, "pause between the chunks of a stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *chunks < 3 {
		return fmt.Errorf("--chunks must be at least 3, got %d", *chunks)
	}
	return serve(*listen, newUpstream(*chunks, *interval).handler())
}
