-- Argo CD health of an Aurora InferencePool, from the status Aurora writes. Degraded when Degraded is
-- True (a version rejected, a stalled rollout, pods that fail or cannot be placed) or Ready is False
-- for a fault; Progressing while a model is validated or released, or pods start, scale or move to a
-- new version; Healthy when the pods serve the current version. An InferencePool cannot be paused.
-- Argo CD's sandbox: the base and table libraries only (no string library), the resource as obj.
-- Generated from charts/aurora/files/argocd/common.lua and this kind's checks.lua by
-- `npm run generate:argocd-health`: edit those.
local hs = { status = "Progressing", message = "Waiting for Aurora to report status" }

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function say(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason
end

local function holds(c)
  return c ~= nil and c.status == "True"
end

-- Degraded, saying why, when condition c has the status given; true when it did.
local function degradedWhen(c, wanted)
  if c == nil or c.status ~= wanted then
    return false
  end
  hs.status = "Degraded"
  hs.message = say(c)
  return true
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  return hs
end
-- A status of an older spec says nothing of this one.
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for Aurora to observe generation " .. generation .. " (status is of generation " .. status.observedGeneration .. ")"
  return hs
end

-- Every kind reports Ready; until it does, Aurora has not judged the object.
local ready = condition(status, "Ready")
if ready == nil then
  return hs
end

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
