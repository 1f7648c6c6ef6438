#!/bin/sh
# bench/echo/run.sh - zerg's echo module against a plain epoll echo server
# (one worker on CPU 0, echo_load on CPU 1). Options go to bench.py, e.g.
# run.sh BUILD_DIR --rounds 3 --duration 5 --out bench-echo.txt
exec python3 "$(dirname "$0")/bench.py" "$@"
