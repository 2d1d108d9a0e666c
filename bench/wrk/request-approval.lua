-- POST /connectors/request-approval with a unique e-mail per request (thread id + counter +
-- a per-run nonce), so every call creates a new pending request.
package.path = package.path .. ";" .. (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua"
local common = require("common")
local nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
local headers = common.headers()
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
function request()
  n = n + 1
  local email = "new-" .. nonce .. "-" .. tid .. "-" .. n .. "@contoso.example"
  local body = '{"email":"' .. email .. '","displayName":"New Guest","givenName":"New",'
    .. '"surname":"Guest","identities":[{"signInType":"federated","issuer":"google.com",'
    .. '"issuerAssignedId":"' .. email .. '"}],"ui_locales":"en-US"}'
  return wrk.format("POST", "/connectors/request-approval", headers, body)
end

done = common.done
