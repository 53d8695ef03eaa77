-- Argo CD health of an Aurora CareQueue, from the status Aurora writes. Degraded when the queue or its
-- target cannot be seen or acted on, or when a category's oldest entry waited past its maximum wait;
-- Suspended when spec.paused holds the replicas; Healthy while it scales within every wait. A fault
-- shows even when paused: patients waiting too long matter more than who paused the queue.
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

if
  degradedWhen(ready, "False")
  or degradedWhen(condition(status, "Degraded"), "True")
  or degradedWhen(condition(status, "SLOMet"), "False")
then
  return hs
end
hs.message = say(ready)
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
elseif ready.status == "True" then
  hs.status = "Healthy"
end
return hs
