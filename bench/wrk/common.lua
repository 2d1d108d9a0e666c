-- Shared by the wrk scripts of scripts/bench.sh: Basic auth, JSON headers, and a done() that
-- prints one machine-readable line (latencies in microseconds).
local M = {}

function M.headers()
  -- "entra:bench-connector-secret" base64-encoded (the credentials bench.sh starts the server with).
  return {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Basic ZW50cmE6YmVuY2gtY29ubmVjdG9yLXNlY3JldA==",
  }
end

function M.done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    "WRK_RESULT rps=%.1f p50=%d p99=%d p999=%d max=%d requests=%d errors=%d non2xx=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, summary.requests, errors, summary.errors.status))
end

return M
