// Command loadgen is the Go half of the Sidelight proxy benchmark
// (bench/proxy_bench.py drives it): a fake OpenAI upstream, a closed-loop
// HTTP load generator and an OTLP/HTTP trace sink, in one binary with no
// dependency beyond the standard library.
//
//	loadgen upstream  --listen 127.0.0.1:PORT [--chunks 20] [--chunk-interval 0]
//	loadgen load      --url URL --body FILE --concurrency C (--duration D | --requests N)
//	                  [--stream] [--header 'k: v']... [--warmup 200] [--raw]
//	loadgen otlp-sink --listen 127.0.0.1:PORT
package main

import (
	"fmt"
	"os"
)

const usage = `usage: loadgen <command> [flags]

commands:
  upstream   a fake OpenAI chat completions upstream
  load       a closed-loop load generator that prints JSON
  otlp-sink  an OTLP/HTTP trace sink that counts what it receives

Run 'loadgen <command> -h' for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "upstream":
		err = runUpstream(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:], os.Stdout)
	case "otlp-sink":
		err = runSink(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
