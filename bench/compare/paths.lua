-- wrk script: GET the URL paths listed in a file (the first argument after
-- --), one per line, cycling from a different start in each thread; done()
-- prints the results as one JSON line.
local paths = {}
local i = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  i = (id * 7919) % #paths
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%f,"bytes":%d,"errors":%d,"not_ok":%d,"p50_us":%f,"p99_us":%f}\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
