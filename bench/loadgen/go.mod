module sidelight.dev/bench/loadgen

go 1.24
