-- Argo CD health of an Aurora HealingPolicy, from the status Aurora writes. Degraded when the audit
-- trail cannot be written (nothing is healed without it), a target was left to a person, or a storm
-- stopped all action; Suspended when spec.paused, or while an action waits for a person's approval;
-- Progressing while it heals a target; Healthy while it watches. A fault shows even when paused.
-- Argo CD's sandbox: the base and table libraries only (no string library), the resource as obj.

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
