#!/usr/bin/env python3
"""AT+CGSN round trips over a serial port with pyserial, written the way
gateway scripts usually are: write the command, readline() until the final
OK. The Go benchmark BenchmarkPTYRoundTripPyserial (atcmd/pty_bench_test.go)
runs it against the same pty responder as the engine and the raw floor.

usage: pyserial_roundtrip.py PORT N   prints "ns/op X" for N timed exchanges
after a warm-up. Needs Debian's python3-serial.
"""
import sys
import time

import serial


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: pyserial_roundtrip.py PORT N")
    path, n = sys.argv[1], int(sys.argv[2])
    port = serial.Serial(path, 115200, timeout=2)

    def exchange():
        port.write(b"AT+CGSN\r")
        while True:
            line = port.readline()
            if not line:
                sys.exit("pyserial_roundtrip: no OK within 2 s")
            if line == b"OK\r\n":
                return

    for _ in range(min(n, 200)):
        exchange()
    start = time.perf_counter_ns()
    for _ in range(n):
        exchange()
    elapsed = time.perf_counter_ns() - start
    port.close()
    print("ns/op %d" % (elapsed // max(n, 1)))


if __name__ == "__main__":
    main()
