#!/bin/sh
# bench/http/run.sh - zerg's http module against nginx (wrk, one worker each on
# CPU 0, wrk on CPU 1). Run from the build folder; options go to bench.py,
# e.g. run.sh --rounds 3 --duration 5 --out bench-http.txt
exec python3 "$(dirname "$0")/bench.py" "$@"
