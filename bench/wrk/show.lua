-- GET /show/{id} with ids drawn uniformly from 1..rows (wrk ... -- ROWS).
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
require "common"

local rows = 10000

function init(args)
  rows = tonumber(args[1] or rows)
  math.randomseed(os.time() + (id or 0) * 7919)
end

function request()
  return wrk.format("GET", "/show/" .. math.random(1, rows))
end
