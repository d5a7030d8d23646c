"""``make bench``: imgpipe against the lab's own command, on this machine, in one run.

Run as ``python -m bench`` from the repository root (``make bench`` does). It generates its
corpus, measures the engine, the pipeline's throughput, latency and scale, prints a table with
every figure, its target and PASS/MISS, and writes ``bench/results.json``. Nothing here is part
of the tests; RESULTS.md beside this file holds the recorded results and their analysis.
"""
