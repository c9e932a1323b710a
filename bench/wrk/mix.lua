-- wrk script for the API benchmark: one endpoint per wrk process, chosen by BENCH_ENDPOINT
-- (create | status | position); the movie ids to read come from the file in BENCH_IDS.
-- Prints one JSON line at the end: requests, latency percentiles (ms), non-2xx and socket
-- errors, so three concurrent wrk processes give per-endpoint figures.

local endpoint = os.getenv("BENCH_ENDPOINT") or "status"
local ids_file = os.getenv("BENCH_IDS")
local ids = {}
local threads = {}
local counter = 0
local non2xx = 0

local function load_ids()
  if ids_file == nil then
    return
  end
  for line in io.lines(ids_file) do
    if #line > 0 then
      ids[#ids + 1] = line
    end
  end
end

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  load_ids()
  math.randomseed(os.time() + (id or 0) * 7919)
end

local create_body = '{"prompt": "A lighthouse keeper befriends a storm", "scene_count": 6}'
local create_headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  if endpoint == "create" then
    return wrk.format("POST", "/api/movies", create_headers, create_body)
  end
  local movie = ids[math.random(#ids)]
  if endpoint == "position" then
    return wrk.format("GET", "/api/queue/" .. movie .. "/position")
  end
  return wrk.format("GET", "/api/movies/" .. movie .. "/status")
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{"endpoint": "%s", "requests": %d, "duration_s": %.6f, "non_2xx": %d, '
      .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, "mean": %.3f}}\n',
    endpoint, summary.requests, summary.duration / 1e6, bad,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000
  ))
end
