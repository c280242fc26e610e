package main

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"sync/atomic"
)

// sink counts OTLP/HTTP trace exports: requests, bytes and spans.
type sink struct {
	requests, bytes, spans, malformed atomic.Int64
}

func (s *sink) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.traces)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"requests": s.requests.Load(), "bytes": s.bytes.Load(),
			"spans": s.spans.Load(), "malformed": s.malformed.Load(),
		})
	})
	return mux
}

func (s *sink) traces(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.bytes.Add(int64(len(data)))
	if n, err := countSpans(data); err != nil {
		s.malformed.Add(1)
	} else {
		s.spans.Add(int64(n))
	}
	// An empty ExportTraceServiceResponse: every span accepted.
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

var errProto = errors.New("malformed protobuf")

// fields calls f with the number and bytes of every length-delimited field
// of a protobuf message, skipping the other wire types.
func fields(msg []byte, f func(num uint64, val []byte) error) error {
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return errProto
		}
		msg = msg[n:]
		switch tag & 7 {
		case 0: // varint
			if _, n = binary.Uvarint(msg); n <= 0 {
				return errProto
			}
			msg = msg[n:]
		case 1: // fixed64
			if len(msg) < 8 {
				return errProto
			}
			msg = msg[8:]
		case 5: // fixed32
			if len(msg) < 4 {
				return errProto
			}
			msg = msg[4:]
		case 2: // length-delimited
			size, n := binary.Uvarint(msg)
			if n <= 0 || uint64(len(msg)-n) < size {
				return errProto
			}
			if err := f(tag>>3, msg[n:n+int(size)]); err != nil {
				return err
			}
			msg = msg[n+int(size):]
		default:
			return errProto
		}
	}
	return nil
}

// countSpans counts the spans of an ExportTraceServiceRequest:
// resource_spans (1) > scope_spans (2) > spans (2).
func countSpans(req []byte) (int, error) {
	count := 0
	err := fields(req, func(num uint64, resourceSpans []byte) error {
		if num != 1 {
			return nil
		}
		return fields(resourceSpans, func(num uint64, scopeSpans []byte) error {
			if num != 2 {
				return nil
			}
			return fields(scopeSpans, func(num uint64, _ []byte) error {
				if num == 2 {
					count++
				}
				return nil
			})
		})
	})
	return count, err
}

func runSink(args []string) error {
	fs := flag.NewFlagSet("otlp-sink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "loopback HOST:PORT to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(*listen, (&sink{}).handler())
}
