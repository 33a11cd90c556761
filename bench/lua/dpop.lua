-- One fresh DPoP proof per request (RFC 9449), read from a file written just before the round
-- (bench/lib/dpop-load.ts). Proofs are never reused: when they run out the thread stops, and wrk
-- reports the rate over the time it ran. Run with -t1 (threads would share the file).
local proofs, n, i, headers = {}, 0, 0, {}

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    proofs[n] = line
  end
  for k, v in pairs(wrk.headers) do headers[k] = v end
end

function request()
  i = i + 1
  if i >= n then wrk.thread:stop() end
  headers["DPoP"] = proofs[i] or proofs[n]
  return wrk.format(nil, nil, headers)
end
