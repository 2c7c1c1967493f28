"""Performance benchmarks of the participant-attributes functions.

`make bench` (= `.venv/bin/python -m benchmarks` after `make build`) runs every scenario at
full size, prints the results and writes benchmarks/RESULTS.md. Each scenario is a
function `run_<name>(size) -> dict` (see `benchmarks.__main__.SCENARIOS`) so that
tests/unit/test_benchmarks_smoke.py can run it at a tiny size.

- cold_start: a fresh Python process on the built function + layer (sam build output)
  imports the FetchAttributes handler and handles its first event, against the Genesys
  emulator and a moto server; versus the same with an eager `import PureCloudPlatformClientV2`.
- economy: Genesys requests per conversation through the real chain (localdev's sandbox),
  versus the seeds' workflow (new token, read, PATCH, verify read).
- burst: 1,000 conversations under a scaled-down Genesys rate limit, with the template's
  reserved concurrency modelled as per-function worker "containers"; burst-real: the same
  at Genesys's real limit (300 requests / 60 s) with Lambda's clocks, time compressed 6x,
  beside a what-if with a longer Timeout for the Genesys callers.
- warm_overhead: the project's own time per warm invocation, Genesys, external-system and
  AWS calls excluded.

Everything listens on 127.0.0.1 only.
"""
