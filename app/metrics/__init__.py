"""Prometheus metrics (issue 18): what `GET /metrics` shows.

- `tally`: the hot path's counters, plain in-process numbers moved into prometheus-client's
  (multiprocess) values once a second and at each scrape: no lock, no I/O per event;
- `catalogue`: every metric we keep, by name;
- `exposition`: the text a scrape gets (every worker's values, plus what is read at scrape
  time: the pipeline's backlog);
- `multiproc`: the directory the workers of `firstcontact serve` share their values in.
"""
