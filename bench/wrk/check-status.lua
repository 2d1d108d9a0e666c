-- POST /connectors/check-approval-status for a random populated user (user{i}@fabrikam.com,
-- i < BENCH_ROWS), so each lookup hits a stored pending request.
package.path = package.path .. ";" .. (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua"
local common = require("common")
local rows = tonumber(os.getenv("BENCH_ROWS") or "10000")
local headers = common.headers()

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  local i = math.random(0, rows - 1)
  local email = "user" .. i .. "@fabrikam.com"
  local body = '{"email":"' .. email .. '","identities":[{"signInType":"federated",'
    .. '"issuer":"google.com","issuerAssignedId":"' .. email .. '"}],"ui_locales":"en-US"}'
  return wrk.format("POST", "/connectors/check-approval-status", headers, body)
end

done = common.done
