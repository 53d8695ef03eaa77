-- Argo CD health of an Aurora CareQueue, from the status Aurora writes. Degraded when the queue or its
-- target cannot be seen or acted on, or when a category's oldest entry waited past its maximum wait;
-- Suspended when spec.paused holds the replicas; Healthy while it scales within every wait. A fault
-- shows even when paused: patients waiting too long matter more than who paused the queue.
-- Argo CD's sandbox: the base and table libraries only (no string library), the resource as obj.

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
