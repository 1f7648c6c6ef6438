-- bench/http/pipeline.lua - wrk script: PIPELINE_DEPTH (default 16) GET
-- requests written at once on each connection; wrk counts every response.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")

init = function(args)
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, wrk.path)
  end
  req = table.concat(r)
end

request = function()
  return req
end
