-- Argo CD health of an Aurora TriageModel, from the status Aurora writes. Healthy once the version in
-- the spec passed validation; Degraded when it was refused (the file, its digest, its contract or its
-- acceptance tests), with the reason's message; Progressing while it is being judged. Argo CD's
-- sandbox: the base and table libraries only (no string library), the resource as obj.

hs.message = say(ready)
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
end
-- Unknown: the validator could not judge the file this time and is asked again.
return hs
