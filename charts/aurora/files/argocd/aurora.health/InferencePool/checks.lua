-- Argo CD health of an Aurora InferencePool, from the status Aurora writes. Degraded when Degraded is
-- True (a version rejected, a stalled rollout, pods that fail or cannot be placed) or Ready is False
-- for a fault; Progressing while a model is validated or released, or pods start, scale or move to a
-- new version; Healthy when the pods serve the current version. An InferencePool cannot be paused.
-- Argo CD's sandbox: the base and table libraries only (no string library), the resource as obj.

-- Reasons of Ready or ModelCurrent False that say the pool is on its way, not failing.
local underway = {
  AwaitingValidation = true,
  AwaitingRelease = true,
  ReleaseSourceChanged = true,
  RollingOut = true,
  Scaling = true,
  PodsNotReady = true,
}

local function judge(c)
  hs.message = say(c)
  if c.reason ~= nil and underway[c.reason] then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  return hs
end

if degradedWhen(condition(status, "Degraded"), "True") then
  return hs
end
if ready.status == "False" then
  return judge(ready)
end
if ready.status ~= "True" then
  hs.message = say(ready)
  return hs
end
-- Ready: the pods serve, though perhaps an older version while the newer one is on its way.
local progressing = condition(status, "Progressing")
if progressing ~= nil and progressing.status == "True" then
  hs.message = say(progressing)
  return hs
end
local current = condition(status, "ModelCurrent")
if current ~= nil and current.status == "False" then
  return judge(current)
end
hs.status = "Healthy"
hs.message = say(ready)
return hs
