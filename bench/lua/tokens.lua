-- A different bearer token on every request, round-robin over a file of tokens (one a line,
-- bench/lib/static-issuer.ts): verifying must not come down to one cached result.
local tokens, n, i, headers = {}, 0, 0, {}

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    tokens[n] = "Bearer " .. line
  end
  for k, v in pairs(wrk.headers) do headers[k] = v end
end

function request()
  i = i % n + 1
  headers["authorization"] = tokens[i]
  return wrk.format(nil, nil, headers)
end
