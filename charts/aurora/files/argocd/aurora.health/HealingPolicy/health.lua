-- Argo CD health of an Aurora HealingPolicy, from the status Aurora writes. Degraded when the audit
-- trail cannot be written (nothing is healed without it), a target was left to a person, or a storm
-- stopped all action; Suspended when spec.paused, or while an action waits for a person's approval;
-- Progressing while it heals a target; Healthy while it watches. A fault shows even when paused.
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

if degradedWhen(ready, "False") or degradedWhen(condition(status, "Escalated"), "True") then
  return hs
end
local storm = condition(status, "StormActive")
if holds(storm) then
  -- A storm that ended cools down and ends by itself; one still raging stops all action.
  if storm.reason == "StormCoolingDown" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = say(storm)
  return hs
end
if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = say(ready)
  return hs
end
local healing = condition(status, "Healing")
if holds(healing) then
  if healing.reason == "AwaitingApproval" then
    hs.status = "Suspended"
  end
  hs.message = say(healing)
  return hs
end
hs.message = say(ready)
if ready.status == "True" then
  hs.status = "Healthy"
end
return hs
